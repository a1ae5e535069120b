//! The load the drill and the soak put on the server: session events on the broker, API clients,
//! subscriptions, a bulk job and exports, each counting what it was answered.

use super::*;
use crate::bulk::{iccid, load_sims, login, tenant};
use anyhow::{bail, Context as _};
use chrono::Utc;
use futures::{SinkExt, StreamExt};
use ioto::engines::Engines;
use ioto_domain::identifiers::{Iccid, MccMnc};
use ioto_domain::ports::EventBus;
use ioto_domain::TenantId;
use ioto_ingest::simulator::{SessionPlan, SimEvent};
use ioto_ingest::worker::IngestTopics;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The drill's tenant and what it was given.
pub(super) struct Fixture {
    pub(super) tenant: TenantId,
    pub(super) token: String,
    /// SIMs with sessions, then the bulk job's.
    pub(super) session_sims: Vec<Iccid>,
    pub(super) bulk_sims: Vec<Iccid>,
}

pub(super) async fn fixture(
    engines: &Engines,
    http: &reqwest::Client,
    opts: &Options,
) -> anyhow::Result<Fixture> {
    let run = u32::try_from(rand::random::<u64>() % 100_000).unwrap_or(0);
    let slug = format!("faults-{run:05}");
    let (tenant_id, _, email) = tenant(engines, &slug, "Fault Drill").await?;
    let total = opts.sims + opts.bulk_sims;
    load_sims(engines, tenant_id, run, 0, total).await?;
    let all = (0..total)
        .map(|i| iccid(run, i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let token = login(http, &opts.server, &email)
        .await
        .context("signing in to the server")?;
    let (session_sims, bulk_sims) = all.split_at(opts.sims);
    Ok(Fixture {
        tenant: tenant_id,
        token,
        session_sims: session_sims.to_vec(),
        bulk_sims: bulk_sims.to_vec(),
    })
}

/// A plan of about `events` session events for the SIMs, over the last day.
pub(super) fn plan(sims: &[Iccid], events: u64, seed: u64) -> SessionPlan {
    let now = Utc::now();
    let mut plan = SessionPlan {
        iccids: sims.to_vec(),
        from: now - chrono::Duration::hours(24),
        to: now - chrono::Duration::minutes(1),
        bytes_min: 100_000,
        bytes_max: 50_000_000,
        sessions_per_sim: 1,
        update_every: chrono::Duration::minutes(5),
        networks: ["262-01", "262-02", "234-15", "208-01", "310-260"]
            .iter()
            .filter_map(|c| MccMnc::parse(c).ok())
            .collect(),
        seed,
    };
    // Events of one session per SIM, from a sample, scaled to the target.
    let sample = sims.len().min(200);
    let per_sim = (0..sample).map(|i| plan.events_of(i).len()).sum::<usize>() as f64 / sample.max(1) as f64;
    let sessions = (events as f64 / (per_sim.max(1.0) * sims.len().max(1) as f64)).ceil();
    plan.sessions_per_sim = (sessions as u32).max(1);
    plan
}

/// Publishes every event of the plan at `rate` per second, SIMs concurrently and each SIM's
/// events in order; an event the broker does not take is sent again until it does (the
/// pipeline counts a repeated rollup or CDR once). Returns what the events add up to.
pub(super) async fn publish(
    bus: Arc<dyn EventBus>,
    topics: IngestTopics,
    plan: Arc<SessionPlan>,
    rate: u64,
    sent: Arc<AtomicU64>,
    resent: Arc<AtomicU64>,
) -> Expected {
    let started = Instant::now();
    let expected = Arc::new(Mutex::new(Expected::new()));
    futures::stream::iter(0..plan.iccids.len())
        .for_each_concurrent(64, |i| {
            let (bus, topics, plan, sent, resent, expected) = (
                Arc::clone(&bus),
                topics.clone(),
                Arc::clone(&plan),
                Arc::clone(&sent),
                Arc::clone(&resent),
                Arc::clone(&expected),
            );
            async move {
                let mut mine: Expected = HashMap::new();
                for event in plan.events_of(i) {
                    let due =
                        Duration::from_secs_f64(sent.load(Ordering::Relaxed) as f64 / rate.max(1) as f64);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        tokio::time::sleep(wait).await;
                    }
                    let (topic, key, body) = match &event {
                        SimEvent::Rollup(r) => {
                            (&topics.sessions, r.session_id.clone(), r.to_json().to_string())
                        }
                        SimEvent::Cdr(c) => {
                            let e = mine.entry((c.iccid.clone(), c.start.date_naive())).or_default();
                            e.0 += c.bytes_in;
                            e.1 += c.bytes_out;
                            (&topics.cdrs, c.iccid.as_str().to_owned(), c.to_json().to_string())
                        }
                    };
                    let mut pause = Duration::from_millis(200);
                    while let Err(e) = bus.publish(topic, &key, body.as_bytes()).await {
                        tracing::debug!(error = %e, "the broker did not take an event; sending it again");
                        resent.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(5));
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                let mut all = expected.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                for (k, (i, o)) in mine {
                    let e = all.entry(k).or_default();
                    e.0 += i;
                    e.1 += o;
                }
            }
        })
        .await;
    let expected = expected.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    expected.clone()
}

/// One GraphQL call: how it ended.
pub(super) async fn call(
    http: &reqwest::Client,
    server: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> Outcome {
    let resp = match http
        .post(format!("{server}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return Outcome::Other(format!("no answer: {e}")),
    };
    let status = resp.status();
    let body: Value = match resp.json().await {
        Ok(b) => b,
        Err(e) => return Outcome::Other(format!("HTTP {status}, not JSON: {e}")),
    };
    match body["errors"].as_array() {
        None if status.is_success() && !body["data"].is_null() => Outcome::Data,
        Some(errors) if !errors.is_empty() => {
            if errors.iter().all(|e| e["extensions"]["code"] == "UNAVAILABLE") {
                Outcome::Unavailable
            } else {
                Outcome::Other(format!("HTTP {status}: {}", Value::Array(errors.clone())))
            }
        }
        _ => Outcome::Other(format!("HTTP {status}: {body}")),
    }
}

pub(super) const PAGE: &str = "{ sims(first: 20) { nodes { iccid state } pageInfo { hasNextPage } } }";

pub(super) const SIM: &str = "query($i: Iccid!) { sim(iccid: $i) { iccid state liveSession { bytesIn } } }";

pub(super) const USAGE: &str = "query($i: Iccid!, $f: DateTime!, $t: DateTime!) { sim(iccid: $i) { usage(from: $f, to: $t, granularity: DAY) { period bytesIn } } }";

pub(super) const DASHBOARD: &str = "{ dashboard { bytesTotal activeSims onlineNow } }";

pub(super) const ME: &str = "{ me { email role } }";

pub(super) const JOBS: &str = "{ bulkJobs(first: 5) { nodes { id status processed } } }";

/// One API client: a call, a pause, the next call, until `stop`.
pub(super) async fn client(
    n: usize,
    http: reqwest::Client,
    opts: Arc<Options>,
    fx: Arc<Fixture>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let ops: [(&str, &str); 6] = [
        ("sims", PAGE),
        ("sim", SIM),
        ("usage", USAGE),
        ("dashboard", DASHBOARD),
        ("me", ME),
        ("bulkJobs", JOBS),
    ];
    // Clients start spread over one pause, not all at once.
    let offset = opts.think.mul_f64((n % 100) as f64 / 100.0);
    if !pause(&mut stop, offset).await {
        return;
    }
    let mut k = n;
    loop {
        let (op, query) = ops[k % ops.len()];
        let sim = &fx.session_sims[(k * 7919) % fx.session_sims.len()];
        let now = Utc::now();
        let vars = json!({
            "i": sim.as_str(),
            "f": (now - chrono::Duration::days(2)).to_rfc3339(),
            "t": now.to_rfc3339()});
        let started = Instant::now();
        let outcome = call(&http, &opts.server, &fx.token, query, vars).await;
        shared.record(op, outcome, started.elapsed().as_secs_f64() * 1e3);
        k += 1;
        if !pause(&mut stop, opts.think).await {
            return;
        }
    }
}

/// Sleeps `d` unless `stop` comes first; `false` when it did.
pub(super) async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    let stopped = tokio::select! {
    _ = stop.wait_for(|s| *s) => true,
    _ = tokio::time::sleep(d) => false};
    !stopped && !*stop.borrow()
}

/// Opens a WebSocket and starts `subs` subscriptions on it: on the first socket one of them
/// follows every live session of the tenant (a wall display), and on each the others alternate
/// between one SIM's live session (a SIM's page) and the tenant's SIM state changes.
pub(super) async fn open_subscriptions(
    server: &str,
    token: &str,
    socket: usize,
    subs: usize,
    sims: &[Iccid],
) -> anyhow::Result<Ws> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    use tokio_tungstenite::tungstenite::Message;
    let url = format!("{}/graphql/ws", server.replacen("http", "ws", 1));
    let mut req = url.into_client_request()?;
    req.headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    ws.send(Message::text(
        json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } })
            .to_string(),
    ))
    .await?;
    for id in 0..subs {
        let sim = &sims[(socket * subs + id) % sims.len()];
        let (query, variables) = if socket == 0 && id == 0 {
            (
                "subscription { liveSessions { iccid session { bytesIn } } }",
                json!({}),
            )
        } else if id % 2 == 0 {
            (
                "subscription($i: Iccid!) { liveSessions(iccid: $i) { iccid session { bytesIn } } }",
                json!({ "i": sim.as_str() }),
            )
        } else {
            ("subscription { simStateChanged { iccid from to } }", json!({}))
        };
        ws.send(Message::text(
            json!({ "id": id.to_string(), "type": "subscribe", "payload": { "query": query, "variables": variables } })
                .to_string(),
        ))
        .await?;
    }
    Ok(ws)
}

/// One WebSocket holding `subs` subscriptions until `stop`; reopened (as a client library
/// would) when the server closes it or completes a subscription.
pub(super) async fn subscriber(
    opts: Arc<Options>,
    fx: Arc<Fixture>,
    socket: usize,
    subs: usize,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let mut ws = match open_subscriptions(&opts.server, &fx.token, socket, subs, &fx.session_sims).await {
            Ok(ws) => ws,
            Err(e) => {
                Shared::count(&shared.closes, format!("could not open: {e}"));
                if !pause(&mut stop, Duration::from_secs(1)).await {
                    return;
                }
                shared.reconnects.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        shared
            .open_subscriptions
            .fetch_add(subs as u64, Ordering::Relaxed);
        let ended = loop {
            let msg = tokio::select! {
            _ = stop.wait_for(|s| *s) => None,
            m = ws.next() => Some(m)};
            let Some(msg) = msg else {
                let _ = ws.close(None).await;
                shared
                    .open_subscriptions
                    .fetch_sub(subs as u64, Ordering::Relaxed);
                return;
            };
            match msg {
                None => break "the connection ended without a close frame".to_owned(),
                Some(Err(e)) => break format!("the connection failed: {e}"),
                Some(Ok(Message::Close(frame))) => {
                    break frame.map_or("closed without a code".to_owned(), |f| {
                        format!("closed {} {}", u16::from(f.code), f.reason)
                    })
                }
                Some(Ok(Message::Text(text))) => {
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    match v["type"].as_str() {
                        Some("next") if v["payload"]["errors"].is_array() => {
                            for e in v["payload"]["errors"].as_array().into_iter().flatten() {
                                Shared::count(
                                    &shared.subscription_errors,
                                    e["extensions"]["code"].as_str().unwrap_or("no code").to_owned(),
                                );
                            }
                        }
                        Some("next") => {
                            shared.messages.fetch_add(1, Ordering::Relaxed);
                        }
                        Some("error") => {
                            for e in v["payload"].as_array().into_iter().flatten() {
                                Shared::count(
                                    &shared.subscription_errors,
                                    e["extensions"]["code"].as_str().unwrap_or("no code").to_owned(),
                                );
                            }
                        }
                        Some("complete") => {
                            Shared::count(&shared.closes, "a subscription completed".into());
                        }
                        Some("ping") => {
                            let _ = ws
                                .send(Message::text(json!({ "type": "pong" }).to_string()))
                                .await;
                        }
                        _ => {}
                    }
                }
                Some(Ok(_)) => {}
            }
        };
        shared
            .open_subscriptions
            .fetch_sub(subs as u64, Ordering::Relaxed);
        Shared::count(&shared.closes, ended);
        if !pause(&mut stop, Duration::from_secs(1)).await {
            return;
        }
        shared.reconnects.fetch_add(1, Ordering::Relaxed);
    }
}

/// A GraphQL call the drill itself depends on (the bulk job, the exports): tried again while
/// the answer is `UNAVAILABLE` or missing, for up to ten minutes.
pub(super) async fn must(
    http: &reqwest::Client,
    server: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let resp = http
            .post(format!("{server}/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await;
        let body: Option<Value> = match resp {
            Ok(r) => r.json().await.ok(),
            Err(_) => None,
        };
        match body {
            Some(b) if b["errors"].is_null() => return Ok(b["data"].clone()),
            Some(b)
                if b["errors"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|e| e["extensions"]["code"] != "UNAVAILABLE")) =>
            {
                bail!("{query}: {}", b["errors"])
            }
            _ if Instant::now() > deadline => bail!("{query}: no answer for ten minutes"),
            _ => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

/// Requests an export every `every` until `stop`; their ids.
pub(super) async fn exporter(
    http: reqwest::Client,
    opts: Arc<Options>,
    fx: Arc<Fixture>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut n = 0usize;
    loop {
        let (kind, format) = if n % 2 == 0 {
            ("SIM_INVENTORY", "CSV")
        } else {
            ("SIM_INVENTORY", "PARQUET")
        };
        let data = must(
            &http,
            &opts.server,
            &fx.token,
            "mutation($k: ExportKind!, $f: ExportFormat!) { requestExport(kind: $k, format: $f) { id } }",
            json!({ "k": kind, "f": format }),
        )
        .await?;
        ids.push(
            data["requestExport"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        n += 1;
        if !pause(&mut stop, opts.export_every).await {
            return Ok(ids);
        }
    }
}
