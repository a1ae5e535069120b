//! Sends notification deliveries: webhooks signed the Standard Webhooks way and e-mail over
//! SMTP, retried with back-off. Every instance may send them: deliveries are claimed through the
//! database with a lease, so an instance that dies mid-attempt leaves them to another.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use futures::StreamExt;
use ioto_app::FleetService;
use ioto_domain::notify::{
    sign_webhook, AddressPolicy, DeliveryAttempt, DeliveryChannel, DeliveryStatus, DueDelivery, RetryPolicy,
};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::watch;
use uuid::Uuid;

use crate::config::{NotificationsConfig, SmtpConfig};

/// Notifications fanned out per round.
const DISPATCH_BATCH: u64 = 100;

pub fn address_policy(config: &NotificationsConfig) -> AddressPolicy {
    AddressPolicy {
        allow_loopback: config.allow_loopback_http,
        allow_private: config.allow_private_addresses,
    }
}

/// Starts the delivery worker unless `max_concurrent` is 0. Fails when the SMTP settings are
/// unusable (at start, not at the first e-mail).
pub fn spawn(
    fleet: FleetService,
    config: NotificationsConfig,
    smtp: &SmtpConfig,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    if config.max_concurrent == 0 {
        return Ok(());
    }
    let timeout = Duration::from_secs(config.timeout_seconds);
    let mailer = match &smtp.url {
        Some(url) => {
            let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                .with_context(|| format!("smtp.url: '{}' is not usable", url.redacted()))?
                .timeout(Some(timeout))
                .build();
            let from: Mailbox = smtp
                .from
                .parse()
                .with_context(|| format!("smtp.from: '{}' is not a mailbox", smtp.from))?;
            Some(Mailer { transport, from })
        }
        None => None,
    };
    let sender = Sender {
        policy: address_policy(&config),
        retry: RetryPolicy {
            base: Duration::from_millis(config.retry_base_ms),
            max: Duration::from_secs(config.retry_max_seconds),
            max_attempts: config.max_attempts,
        },
        timeout,
        mailer,
    };
    let worker = format!("notify-{}", Uuid::new_v4());
    // An attempt ends within `timeout`; the claim outlasts it well.
    let lease = timeout * 2 + Duration::from_secs(30);
    let poll = Duration::from_millis(config.poll_ms);
    tokio::spawn(async move {
        let wake = fleet.delivery_wakeup();
        loop {
            let email = sender.mailer.is_some();
            if let Err(e) = fleet.dispatch_notifications(email, DISPATCH_BATCH).await {
                tracing::warn!(error = %e, "dispatching notifications failed; retrying");
            }
            let mut busy = false;
            match fleet
                .claim_deliveries(&worker, lease, config.max_concurrent as u64)
                .await
            {
                Ok(due) => {
                    busy = !due.is_empty();
                    futures::stream::iter(due)
                        .for_each_concurrent(config.max_concurrent, |d| {
                            let (fleet, sender, worker) = (&fleet, &sender, &worker);
                            async move {
                                let attempt = sender.attempt(&d).await;
                                log_attempt(&d, &attempt);
                                if let Err(e) = fleet.record_delivery(d.delivery.id, worker, &attempt).await {
                                    tracing::warn!(delivery = %d.delivery.id, error = %e, "recording a delivery failed; it is tried again when its claim lapses");
                                }
                            }
                        })
                        .await;
                }
                Err(e) => tracing::warn!(error = %e, "claiming deliveries failed; retrying"),
            }
            if busy {
                if *shutdown.borrow() {
                    break;
                }
                continue;
            }
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    });
    Ok(())
}

fn log_attempt(d: &DueDelivery, a: &DeliveryAttempt) {
    let channel = d.delivery.channel.as_str();
    match a.status {
        DeliveryStatus::Delivered => {
            tracing::info!(delivery = %d.delivery.id, channel, "notification delivered")
        }
        DeliveryStatus::Pending => tracing::info!(
            delivery = %d.delivery.id, channel, error = a.error.as_deref().unwrap_or(""),
            next_attempt_at = ?a.next_attempt_at, "notification delivery failed; will retry"
        ),
        DeliveryStatus::Failed => tracing::warn!(
            delivery = %d.delivery.id, channel, error = a.error.as_deref().unwrap_or(""),
            "notification delivery given up"
        ),
    }
}

struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

struct Sender {
    policy: AddressPolicy,
    retry: RetryPolicy,
    timeout: Duration,
    mailer: Option<Mailer>,
}

/// Why an attempt failed: tried again (back-off) or not at all.
enum Failure {
    Retry(String, Option<u16>),
    Permanent(String, Option<u16>),
}

impl Sender {
    /// One attempt, bounded as a whole (name lookup, connection, answer) by the timeout, so it
    /// ends well within the claim's lease.
    async fn attempt(&self, d: &DueDelivery) -> DeliveryAttempt {
        let send = async {
            match d.delivery.channel {
                DeliveryChannel::Webhook => self.webhook(d).await,
                DeliveryChannel::Email => self.email(d).await,
            }
        };
        let result = tokio::time::timeout(self.timeout, send)
            .await
            .unwrap_or_else(|_| {
                Err(Failure::Retry(
                    format!("no answer within {} s", self.timeout.as_secs()),
                    None,
                ))
            });
        let at = Utc::now();
        match result {
            Ok(status) => DeliveryAttempt {
                at,
                status: DeliveryStatus::Delivered,
                next_attempt_at: None,
                error: None,
                response_status: status,
            },
            Err(Failure::Retry(error, status)) => {
                self.retry
                    .after_failure(d.delivery.attempts + 1, at, error, status)
            }
            Err(Failure::Permanent(error, status)) => DeliveryAttempt {
                at,
                status: DeliveryStatus::Failed,
                next_attempt_at: None,
                error: Some(error),
                response_status: status,
            },
        }
    }

    /// One POST; the host is resolved here and every address checked, and the request goes to
    /// the address checked (no second lookup an attacker's DNS could answer differently).
    async fn webhook(&self, d: &DueDelivery) -> Result<Option<u16>, Failure> {
        let target = &d.delivery.target;
        let url = self
            .policy
            .check_url(target)
            .map_err(|e| Failure::Permanent(format!("the endpoint is no longer allowed: {e}"), None))?;
        let secret = d
            .secret
            .as_deref()
            .ok_or_else(|| Failure::Permanent("the endpoint has no signing secret".into(), None))?;
        let port = url.port_or_known_default().unwrap_or(443);
        let (domain, candidates): (Option<String>, Vec<IpAddr>) = match url.host() {
            Some(url::Host::Ipv4(a)) => (None, vec![a.into()]),
            Some(url::Host::Ipv6(a)) => (None, vec![a.into()]),
            Some(url::Host::Domain(name)) => {
                // The resolver's own words and the addresses it found stay in the server's log:
                // they describe the server's network, which the endpoint's owner must not learn.
                let found = tokio::net::lookup_host((name, port)).await.map_err(|e| {
                    tracing::warn!(host = %name, error = %e, "resolving a webhook endpoint");
                    Failure::Retry(format!("could not resolve {name}"), None)
                })?;
                (Some(name.to_owned()), found.map(|a| a.ip()).collect())
            }
            None => return Err(Failure::Permanent("the endpoint has no host".into(), None)),
        };
        let mut refused = Vec::new();
        let addr = candidates
            .iter()
            .copied()
            .find(|ip| match self.policy.allowed(*ip) {
                Ok(()) => true,
                Err(why) => {
                    refused.push(format!("{ip} ({why})"));
                    false
                }
            });
        let Some(addr) = addr else {
            tracing::warn!(url = %target, refused = %refused.join(", "), "a webhook endpoint resolves only to refused addresses");
            return Err(Failure::Retry(
                "the endpoint's host resolves only to addresses this server does not deliver to \
                 (private, loopback, link-local or otherwise reserved)"
                    .into(),
                None,
            ));
        };
        // No proxy: a proxy would resolve the host again, past the checks above.
        let mut client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .user_agent(concat!("ioto-webhooks/", env!("CARGO_PKG_VERSION")));
        if let Some(domain) = &domain {
            client = client.resolve(domain, SocketAddr::new(addr, port));
        }
        let client = client
            .build()
            .map_err(|e| Failure::Retry(format!("HTTP client: {e}"), None))?;
        let id = d.notification.id.to_string();
        let timestamp = Utc::now().timestamp();
        let body = d.notification.webhook_body();
        let signature = sign_webhook(secret, &id, timestamp, &body)
            .map_err(|e| Failure::Permanent(e.to_string(), None))?;
        let response = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::Retry(format!("sending: {}", without_url(&e)), None))?;
        let status = response.status();
        let code = Some(status.as_u16());
        if status.is_success() {
            return Ok(code);
        }
        // The answer's body is not kept: it could carry what a receiver should not hand on.
        let error = if status.is_redirection() {
            format!("answered {status}; redirects are not followed, give the final URL")
        } else {
            format!("answered {status}")
        };
        // 410 Gone: the receiver says it will never take it.
        if status == reqwest::StatusCode::GONE {
            Err(Failure::Permanent(error, code))
        } else {
            Err(Failure::Retry(error, code))
        }
    }

    async fn email(&self, d: &DueDelivery) -> Result<Option<u16>, Failure> {
        let Some(mailer) = &self.mailer else {
            return Err(Failure::Permanent(
                "no SMTP server is configured (smtp.url)".into(),
                None,
            ));
        };
        let to: Mailbox = d.delivery.target.parse().map_err(|e| {
            Failure::Permanent(
                format!("'{}' is not an e-mail address: {e}", d.delivery.target),
                None,
            )
        })?;
        let n = &d.notification;
        let message = Message::builder()
            .from(mailer.from.clone())
            .to(to)
            .subject(n.title.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(email_text(n))
            .map_err(|e| Failure::Permanent(format!("building the message: {e}"), None))?;
        match mailer.transport.send(message).await {
            Ok(response) => Ok(response.code().to_string().parse::<u16>().ok()),
            Err(e) if e.is_permanent() => {
                Err(Failure::Permanent(format!("the SMTP server refused: {e}"), None))
            }
            Err(e) => Err(Failure::Retry(format!("SMTP: {e}"), None)),
        }
    }
}

/// The e-mail's text: the summary, then the job's facts.
fn email_text(n: &ioto_domain::notify::Notification) -> String {
    let mut text = format!("{}\n", n.body);
    if let Some(job) = n.payload.get("bulkJob") {
        let field = |k: &str| match job.get(k) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Null) | None => "-".into(),
            Some(v) => v.to_string(),
        };
        text.push_str(&format!(
            "\nJob: {}\nFile: {}\nStatus: {}\nRows: {} (succeeded {}, failed {}, skipped {}, invalid {})\nFinished: {}\n",
            field("id"),
            field("fileName"),
            field("status"),
            field("total"),
            field("succeeded"),
            field("failed"),
            field("skipped"),
            field("invalid"),
            field("finishedAt"),
        ));
        text.push_str(
            "\nEvery row's outcome: the bulkJob query (rows), or the bulk jobs page of the console.\n",
        );
    }
    text
}

/// A reqwest error without the URL (it may carry a token in its query).
fn without_url(e: &reqwest::Error) -> String {
    let mut e = e.to_string();
    if let Some(i) = e.find(" for url (") {
        e.truncate(i);
    }
    e
}
