//! Notifications: what a user waits for (a bulk job's end) reaches them in the app, by e-mail and
//! by signed webhooks.
//!
//! A notification is written in the same transaction as the change it tells of (an outbox), so
//! none is lost when a server dies. Workers then fan it out into deliveries — one per webhook
//! endpoint of the tenant, one e-mail to its recipient when SMTP is configured — and send them
//! with retries and back-off. Webhooks follow the Standard Webhooks convention
//! (<https://www.standardwebhooks.com>): `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, so receivers can check
//! them with existing libraries and refuse replays by the timestamp and the id.

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use uuid::Uuid;

use crate::fleet::bulk::BulkJob;
use crate::forecast::{kind_words, AnomalyRecord};
use crate::ports::quotas::QuotaTarget;
use crate::quota::{QuotaAction, QuotaPeriod, EXCEEDED};
use crate::quota_pool::{PoolPeriod, QuotaPool};
use crate::{Error, Result, TenantId, UserId};

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationKind {
    /// A bulk job reached its final status (completed, with errors, failed or cancelled).
    BulkJobFinished,
    /// A SIM's data quota reached one of its stages (a warning percentage, or the limit).
    QuotaStage,
    /// Alerts of a rule fired (or, in a reminder, still fire).
    AlertFiring,
    /// Alerts of a rule resolved.
    AlertResolved,
    /// The forecast pass found a high-severity anomaly on a SIM.
    Anomaly,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BulkJobFinished => "BULK_JOB_FINISHED",
            Self::QuotaStage => "QUOTA_STAGE",
            Self::AlertFiring => "ALERT_FIRING",
            Self::AlertResolved => "ALERT_RESOLVED",
            Self::Anomaly => "ANOMALY",
        }
    }

    /// The event type webhooks carry (`type` in the body).
    pub fn event_type(self) -> &'static str {
        match self {
            Self::BulkJobFinished => "bulk_job.finished",
            Self::QuotaStage => "quota.stage_reached",
            Self::AlertFiring => "alert.firing",
            Self::AlertResolved => "alert.resolved",
            Self::Anomaly => "anomaly.detected",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "BULK_JOB_FINISHED" => Ok(Self::BulkJobFinished),
            "QUOTA_STAGE" => Ok(Self::QuotaStage),
            "ALERT_FIRING" => Ok(Self::AlertFiring),
            "ALERT_RESOLVED" => Ok(Self::AlertResolved),
            "ANOMALY" => Ok(Self::Anomaly),
            _ => Err(Error::invalid(
                "kind",
                format!("'{s}' is not a notification kind"),
            )),
        }
    }
}

/// One notification: in-app, and the source of its e-mail and webhook deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: Uuid,
    pub tenant_id: TenantId,
    /// The user it is for; `None`: for the tenant's fleet managers (a job submitted with a token
    /// that names no local user).
    pub recipient: Option<UserId>,
    pub kind: NotificationKind,
    /// What it is about (the bulk job's id).
    pub subject_id: Uuid,
    pub title: String,
    /// One plain-language paragraph.
    pub body: String,
    /// The facts, as webhooks carry them in `data`.
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
    /// Where it goes beyond its recipient's e-mail.
    pub audience: Audience,
}

/// Where a notification goes: the in-app inbox, the tenant's webhook endpoints, and e-mail to
/// these addresses (besides its recipient's, when it has one). Bulk jobs and quotas speak on
/// every channel; an alert rule on those it chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience {
    pub in_app: bool,
    pub webhook: bool,
    pub emails: Vec<String>,
}

impl Default for Audience {
    fn default() -> Self {
        Self {
            in_app: true,
            webhook: true,
            emails: Vec::new(),
        }
    }
}

impl Notification {
    /// A SIM's quota reached `period.stage`: for the tenant's fleet managers (no one user set
    /// it for themselves alone). The payload carries the figures, the overshoot past the limit
    /// included.
    pub fn quota_stage(target: &QuotaTarget, period: &QuotaPeriod, at: DateTime<Utc>) -> Self {
        let quota = &target.quota;
        let limit = quota.rule.limit_bytes;
        let used = period.used_bytes;
        let over = quota.rule.overshoot(used);
        let iccid = target.iccid.as_str();
        let until = period
            .end
            .with_timezone(&target.time_zone)
            .format("%-d %B %Y %H:%M %Z");
        let (title, body) = if period.stage >= EXCEEDED {
            let then = match quota.rule.action {
                QuotaAction::Notify => "its service goes on",
                QuotaAction::Suspend => "it is being suspended",
            };
            (
                format!("SIM {iccid} reached its data limit"),
                format!(
                    "{} used of {} this period ({} over); {then}. The period ends {until}.",
                    bytes_text(used),
                    bytes_text(limit),
                    bytes_text(over)
                ),
            )
        } else {
            (
                format!("SIM {iccid} used {} % of its data limit", period.stage),
                format!(
                    "{} used of {} this period; the period ends {until}.",
                    bytes_text(used),
                    bytes_text(limit)
                ),
            )
        };
        let payload = json!({
            "quota": {
                "id": quota.id,
                "tenantId": quota.tenant_id.to_string(),
                "simId": quota.sim_id.to_string(),
                "iccid": iccid,
                "stage": period.stage,
                "usedBytes": used,
                "limitBytes": limit,
                "overshootBytes": over,
                "action": quota.rule.action.as_str(),
                "periodStart": period.start,
                "periodEnd": period.end,
            }
        });
        Self {
            id: Uuid::new_v4(),
            tenant_id: quota.tenant_id,
            recipient: None,
            kind: NotificationKind::QuotaStage,
            subject_id: quota.id,
            title,
            body,
            payload,
            created_at: at,
            read_at: None,
            audience: Audience::default(),
        }
    }

    /// A quota pool reached `period.stage`: for the tenant's fleet managers, as a SIM's quota
    /// tells. The payload names the pool under `pool` (never `quota`, which names one SIM's).
    pub fn pool_stage(
        pool: &QuotaPool,
        time_zone: chrono_tz::Tz,
        period: &PoolPeriod,
        at: DateTime<Utc>,
    ) -> Self {
        let limit = pool.rule.limit_bytes;
        let used = period.used_bytes;
        let over = pool.rule.overshoot(used);
        let sims = match period.sims {
            1 => "1 SIM".to_owned(),
            n => format!("{n} SIMs"),
        };
        let until = period.end.with_timezone(&time_zone).format("%-d %B %Y %H:%M %Z");
        let (title, body) = if period.stage >= EXCEEDED {
            let then = match pool.rule.action {
                QuotaAction::Notify => "its SIMs keep their service",
                QuotaAction::Suspend => "its active SIMs are being suspended",
            };
            (
                format!("Pool '{}' reached its data limit", pool.name),
                format!(
                    "{} used of {} by {sims} this period ({} over); {then}. The period ends {until}.",
                    bytes_text(used),
                    bytes_text(limit),
                    bytes_text(over)
                ),
            )
        } else {
            (
                format!(
                    "Pool '{}' reached {} % of its data limit",
                    pool.name, period.stage
                ),
                format!(
                    "{} used of {} by {sims} this period; the period ends {until}.",
                    bytes_text(used),
                    bytes_text(limit)
                ),
            )
        };
        let payload = json!({
            "pool": {
                "id": pool.id,
                "tenantId": pool.tenant_id.to_string(),
                "name": pool.name,
                "customerId": pool.members.customer().map(|c| c.0.to_string()),
                "stage": period.stage,
                "usedBytes": used,
                "limitBytes": limit,
                "overshootBytes": over,
                "sims": period.sims,
                "action": pool.rule.action.as_str(),
                "periodStart": period.start,
                "periodEnd": period.end,
            }
        });
        Self {
            id: Uuid::new_v4(),
            tenant_id: pool.tenant_id,
            recipient: None,
            kind: NotificationKind::QuotaStage,
            subject_id: pool.id,
            title,
            body,
            payload,
            created_at: at,
            read_at: None,
            audience: Audience::default(),
        }
    }

    /// An anomaly the forecast pass found (of high severity: the pass tells of no others): for
    /// the tenant's fleet managers, on every channel. The payload carries the anomaly's facts;
    /// the subject is the anomaly.
    pub fn anomaly(record: &AnomalyRecord, at: DateTime<Utc>) -> Self {
        let a = &record.anomaly;
        let title = format!(
            "SIM {}: {} on {}",
            record.iccid.as_str(),
            kind_words(a.kind),
            a.day
        );
        let payload = json!({
            "anomaly": {
                "id": record.id,
                "tenantId": record.tenant_id.to_string(),
                "simId": record.sim_id.to_string(),
                "customerId": record.customer_id.map(|c| c.0.to_string()),
                "iccid": record.iccid.as_str(),
                "kind": a.kind.as_str(),
                "day": a.day.to_string(),
                "score": a.score,
                "severity": a.severity.as_str(),
                "sentence": a.sentence,
                "value": a.value,
                "observed": a.evidence.observed,
                "expected": a.evidence.expected,
            }
        });
        Self {
            id: Uuid::new_v4(),
            tenant_id: record.tenant_id,
            recipient: None,
            kind: NotificationKind::Anomaly,
            subject_id: record.id,
            title,
            body: a.sentence.clone(),
            payload,
            created_at: at,
            read_at: None,
            audience: Audience::default(),
        }
    }

    /// The notification of a job that reached its final status.
    pub fn bulk_job_finished(job: &BulkJob, at: DateTime<Utc>) -> Self {
        let what = job
            .file_name
            .as_deref()
            .map(|f| format!("Bulk job '{f}'"))
            .unwrap_or_else(|| "Bulk job".to_owned());
        let title = format!("{what} {}", job.status.as_str().to_lowercase().replace('_', " "));
        let payload = json!({
            "bulkJob": {
                "id": job.id,
                "tenantId": job.tenant_id.to_string(),
                "status": job.status.as_str(),
                "fileName": job.file_name,
                "action": job.action.map(|a| a.as_str()),
                "total": job.total,
                "valid": job.valid,
                "invalid": job.invalid,
                "alreadyInState": job.already_in_state,
                "processed": job.processed,
                "succeeded": job.succeeded,
                "failed": job.failed,
                "skipped": job.skipped,
                "createdAt": job.created_at,
                "finishedAt": job.finished_at,
                "summary": job.summary(at),
            }
        });
        Self {
            id: Uuid::new_v4(),
            tenant_id: job.tenant_id,
            recipient: job.created_by_user,
            kind: NotificationKind::BulkJobFinished,
            subject_id: job.id,
            title,
            body: job.summary(at),
            payload,
            created_at: at,
            read_at: None,
            audience: Audience::default(),
        }
    }

    /// The webhook body: the same bytes on every attempt (the signature covers them).
    pub fn webhook_body(&self) -> Vec<u8> {
        let body = json!({
            "type": self.kind.event_type(),
            "timestamp": self.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": self.payload,
        });
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

/// A tenant's webhook endpoint (its secret is stored, shown once when created).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub url: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// Prefix of webhook secrets (as Standard Webhooks writes them).
pub const SECRET_PREFIX: &str = "whsec_";

/// A new signing secret: 32 random bytes, base64, with [`SECRET_PREFIX`].
pub fn new_webhook_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The `webhook-signature` value of one attempt: `v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`,
/// the key being the secret's bytes after [`SECRET_PREFIX`].
pub fn sign_webhook(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .map_err(|_| Error::Internal("a stored webhook secret is not base64".into()))?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&key).map_err(|e| Error::Internal(format!("webhook key: {e}")))?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Where webhooks may be sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// `http://` to loopback addresses (tests and local development).
    pub allow_loopback: bool,
    /// Private, link-local, shared and other non-public ranges (an on-premises receiver).
    pub allow_private: bool,
}

/// Longest webhook URL accepted.
pub const MAX_URL_LEN: usize = 2_048;

impl AddressPolicy {
    /// Checks an endpoint URL when it is saved: `https` (or `http` to loopback when allowed), no
    /// credentials or fragment, and an address literal only in the ranges allowed. Host names
    /// are checked again when they resolve, at every delivery.
    pub fn check_url(&self, raw: &str) -> Result<url::Url> {
        let bad = |why: String| Error::invalid("url", why);
        let raw = raw.trim();
        if raw.len() > MAX_URL_LEN {
            return Err(bad(format!("is longer than {MAX_URL_LEN} characters")));
        }
        let url = url::Url::parse(raw).map_err(|e| bad(format!("is not a URL ({e})")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "carries credentials; webhooks are authenticated by their signature".into(),
            ));
        }
        if url.fragment().is_some() {
            return Err(bad("has a fragment (#…), which is never sent".into()));
        }
        let host = url.host().ok_or_else(|| bad("has no host".into()))?;
        let literal: Option<IpAddr> = match host {
            url::Host::Ipv4(a) => Some(a.into()),
            url::Host::Ipv6(a) => Some(a.into()),
            url::Host::Domain(d) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                (d == "localhost" || d.ends_with(".localhost")).then_some(IpAddr::from([127, 0, 0, 1]))
            }
        };
        let loopback = literal.is_some_and(|ip| canonical(ip).is_loopback());
        match url.scheme() {
            "https" => {}
            "http" if loopback && self.allow_loopback => {}
            "http" => {
                return Err(bad(
                    "must be https (plain http only to loopback, where the server allows it)".into(),
                ))
            }
            other => return Err(bad(format!("scheme '{other}' is not allowed; use https"))),
        }
        if let Some(ip) = literal {
            self.allowed(ip)
                .map_err(|why| bad(format!("points to {ip}, {why}")))?;
        }
        Ok(url)
    }

    /// Whether a webhook may go to `ip`; the reason when not.
    pub fn allowed(&self, ip: IpAddr) -> std::result::Result<(), &'static str> {
        let ip = canonical(ip);
        if ip.is_unspecified() || ip.is_multicast() {
            return Err("an address nothing may be sent to");
        }
        if let IpAddr::V4(v4) = ip {
            if v4.is_broadcast() || v4.octets()[0] == 0 {
                return Err("an address nothing may be sent to");
            }
        }
        if ip.is_loopback() {
            return if self.allow_loopback {
                Ok(())
            } else {
                Err("a loopback address (not allowed on this server)")
            };
        }
        // Link-local holds the cloud metadata services (169.254.169.254, fd00:ec2::254 is
        // unique-local but named here too): never a webhook receiver.
        if is_link_local(ip) || ip == IpAddr::from([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254]) {
            return Err("a link-local or metadata address (never allowed)");
        }
        if !is_public(ip) && !self.allow_private {
            return Err("a private or reserved address (not allowed on this server)");
        }
        Ok(())
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Globally routable (not private, link-local, shared, documentation, benchmarking or reserved).
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let [o0, o1, ..] = a.octets();
            !(a.is_private()
                || a.is_link_local()
                || a.is_documentation()
                || (o0 == 100 && (64..128).contains(&o1)) // shared address space (RFC 6598)
                || (o0 == 192 && o1 == 0 && a.octets()[2] == 0) // IETF protocol assignments
                || (o0 == 198 && (o1 == 18 || o1 == 19)) // benchmarking
                || o0 >= 240) // reserved
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            !((s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated)
                || s[..6] == [0; 6] // IPv4-compatible (::a.b.c.d)
                || s[0] == 0x2001 && s[1] == 0x0db8 // documentation
                || s[0] == 0x2001 && s[1] == 0 // Teredo (tunnels to any IPv4)
                || s[0] == 0x2002 // 6to4 (tunnels to any IPv4)
                || s[0] == 0x0064 && s[1] == 0xff9b) // NAT64, well-known and local-use
        }
    }
}

/// How a delivery is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryChannel {
    Webhook,
    Email,
}

impl DeliveryChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "WEBHOOK",
            Self::Email => "EMAIL",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "WEBHOOK" => Ok(Self::Webhook),
            "EMAIL" => Ok(Self::Email),
            _ => Err(Error::invalid(
                "channel",
                format!("'{s}' is not a delivery channel"),
            )),
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its (next) attempt.
    Pending,
    Delivered,
    /// Given up after the last attempt.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Delivered => "DELIVERED",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "PENDING" => Ok(Self::Pending),
            "DELIVERED" => Ok(Self::Delivered),
            "FAILED" => Ok(Self::Failed),
            _ => Err(Error::invalid(
                "status",
                format!("'{s}' is not a delivery status"),
            )),
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One notification sent one way (a webhook endpoint or an e-mail address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub notification_id: Uuid,
    pub channel: DeliveryChannel,
    /// The endpoint, for webhooks.
    pub endpoint_id: Option<Uuid>,
    /// The URL or the e-mail address.
    pub target: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The HTTP status of the last webhook answer.
    pub response_status: Option<u16>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A delivery claimed for an attempt, with what sending it needs.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub delivery: Delivery,
    pub notification: Notification,
    /// The endpoint's signing secret (webhooks).
    pub secret: Option<String>,
}

/// The result of one attempt, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub at: DateTime<Utc>,
    /// `Delivered`, `Pending` (tried again at `next_attempt_at`) or `Failed` (given up).
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub response_status: Option<u16>,
}

/// Retries with exponential back-off: the n-th failed attempt is tried again after
/// `base × 2^(n-1)` (at most `max`), with up to 20 % jitter; after `max_attempts` it is given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: std::time::Duration,
    pub max: std::time::Duration,
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// The outcome of a failed attempt (`attempts` made so far, this one included).
    pub fn after_failure(
        &self,
        attempts: u32,
        at: DateTime<Utc>,
        error: String,
        response_status: Option<u16>,
    ) -> DeliveryAttempt {
        let give_up = attempts >= self.max_attempts;
        let next = (!give_up).then(|| {
            let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(30));
            let delay = self.base.saturating_mul(factor).min(self.max);
            let jitter = delay.mul_f64(rand::random::<f64>() * 0.2);
            at + chrono::Duration::from_std(delay + jitter).unwrap_or(chrono::Duration::MAX)
        });
        DeliveryAttempt {
            at,
            status: if give_up {
                DeliveryStatus::Failed
            } else {
                DeliveryStatus::Pending
            },
            next_attempt_at: next,
            error: Some(error),
            response_status,
        }
    }
}

/// Which notifications a list shows, newest first.
#[derive(Debug, Clone, Default)]
pub struct NotificationQuery {
    /// The caller: their own notifications…
    pub recipient: Option<UserId>,
    /// …and this tenant's tenant-wide ones (those for no user in particular).
    pub tenant_wide: Option<TenantId>,
    pub unread_only: bool,
    /// Created before this one (cursor paging: created_at, id).
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: u64,
}

/// Which deliveries a list shows, newest first.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub endpoint: Option<Uuid>,
    pub notification: Option<Uuid>,
    pub limit: u64,
}

/// Bytes in decimal units as people read them: `950 B`, `1.25 MB`, `3 GB`.
pub fn bytes_text(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut unit = 0;
    let mut scaled = b as f64;
    while scaled >= 1000.0 && unit + 1 < UNITS.len() {
        scaled /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        return format!("{b} B");
    }
    let text = format!("{scaled:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification (and its reference libraries).
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let sig = sign_webhook(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let other = sign_webhook(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body).unwrap();
        assert_ne!(sig, other, "the timestamp is signed");
        let fresh = new_webhook_secret();
        assert!(fresh.starts_with(SECRET_PREFIX) && fresh.len() > 40);
        assert_ne!(fresh, new_webhook_secret());
    }

    #[test]
    fn endpoints_are_https_to_public_addresses_unless_allowed() {
        let strict = AddressPolicy::default();
        assert!(strict.check_url("https://hooks.example.com/ioto?x=1").is_ok());
        let refused = |p: AddressPolicy, u: &str| {
            let e = p.check_url(u).unwrap_err();
            assert!(
                matches!(&e, Error::InvalidInput { field, .. } if field == "url"),
                "{u}: {e}"
            );
            e.to_string()
        };
        assert!(refused(strict, "http://hooks.example.com/").contains("must be https"));
        assert!(refused(strict, "ftp://hooks.example.com/").contains("scheme 'ftp'"));
        assert!(refused(strict, "https://user:pw@hooks.example.com/").contains("credentials"));
        assert!(refused(strict, "https://hooks.example.com/#x").contains("fragment"));
        assert!(refused(strict, "not a url").contains("is not a URL"));
        for private in [
            "https://10.1.2.3/",
            "https://192.168.0.10/",
            "https://172.16.5.5/",
            "https://100.64.0.1/",
            "https://[fd00::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://[::10.0.0.1]/",
            "https://[2002:a00:1::]/",
            "https://[64:ff9b:1::a00:1]/",
        ] {
            assert!(
                refused(strict, private).contains("private or reserved"),
                "{private}"
            );
        }
        for metadata in [
            "https://169.254.169.254/latest/meta-data",
            "https://[fe80::1]/",
            "https://[fd00:ec2::254]/",
        ] {
            assert!(
                refused(strict, metadata).contains("link-local or metadata"),
                "{metadata}"
            );
        }
        for nowhere in ["https://0.0.0.0/", "https://[::]/", "https://255.255.255.255/"] {
            assert!(
                refused(strict, nowhere).contains("nothing may be sent"),
                "{nowhere}"
            );
        }
        assert!(refused(strict, "https://127.0.0.1/").contains("loopback"));
        assert!(refused(strict, "https://localhost/").contains("loopback"));
        assert!(refused(strict, "http://127.0.0.1:8080/").contains("must be https"));
        let local = AddressPolicy {
            allow_loopback: true,
            allow_private: false,
        };
        assert!(local.check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(local.check_url("http://localhost:8080/hook").is_ok());
        assert!(refused(local, "https://10.1.2.3/").contains("private"));
        let onprem = AddressPolicy {
            allow_loopback: false,
            allow_private: true,
        };
        assert!(onprem.check_url("https://10.1.2.3/").is_ok());
        assert!(refused(onprem, "https://127.0.0.1/").contains("loopback"));
        assert!(refused(onprem, "https://169.254.169.254/").contains("metadata"));
        assert!(onprem.allowed("8.8.8.8".parse().unwrap()).is_ok());
        assert!(strict.allowed("2a00:1450::1".parse().unwrap()).is_ok());
    }

    #[test]
    fn retries_back_off_then_give_up() {
        let p = RetryPolicy {
            base: std::time::Duration::from_secs(5),
            max: std::time::Duration::from_secs(60),
            max_attempts: 4,
        };
        let at = Utc::now();
        let delay = |n| {
            let a = p.after_failure(n, at, "503".into(), Some(503));
            assert_eq!(a.status, DeliveryStatus::Pending);
            (a.next_attempt_at.unwrap() - at).num_milliseconds()
        };
        assert!((5_000..=6_000).contains(&delay(1)));
        assert!((10_000..=12_000).contains(&delay(2)));
        assert!((20_000..=24_000).contains(&delay(3)));
        let last = p.after_failure(4, at, "503".into(), Some(503));
        assert_eq!(last.status, DeliveryStatus::Failed);
        assert_eq!(last.next_attempt_at, None);
        let capped = RetryPolicy {
            max_attempts: 40,
            ..p
        };
        let a = capped.after_failure(30, at, "x".into(), None);
        assert!((a.next_attempt_at.unwrap() - at).num_seconds() <= 72);
    }
}
