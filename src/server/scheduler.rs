//! Applies scheduled SIM transitions when they fall due, rates open billing periods, folds the
//! dashboard's counters, sweeps data quotas and runs the forecast pass. Every instance may run
//! all five: schedules and quota actions are claimed through the database, so two instances never
//! apply the same one; two ratings of one period give the same rows, the later one current; one
//! compaction runs at a time (the others return at once); a quota's stage moves up once however
//! many evaluate it; a tenant's forecast pass is claimed with a lease.

use std::time::Duration;

use chrono::Utc;
use ioto_app::FleetService;
use tokio::sync::watch;

/// Schedules claimed per tick.
const BATCH: u64 = 200;

/// Runs until shutdown, one tick every `interval`; a full batch ticks again at once.
pub fn spawn(fleet: FleetService, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            let full = match fleet.run_due(Utc::now(), BATCH).await {
                Ok(done) => {
                    for s in &done {
                        tracing::info!(schedule = %s.id, iccid = %s.iccid, target = %s.target, status = %s.status, outcome = ?s.outcome, "scheduled transition handled");
                    }
                    done.len() as u64 == BATCH
                }
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler tick failed; retrying next tick");
                    false
                }
            };
            if full {
                continue;
            }
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    });
}

/// Rates every tenant's open billing periods once per `interval`, the first time at start-up.
pub fn spawn_rating(
    billing: ioto_app::billing::BillingService,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        loop {
            match billing.rate_open_periods(Utc::now().date_naive()).await {
                Ok(runs) => {
                    for r in &runs {
                        tracing::info!(run = %r.id, tenant = %r.tenant_id, kind = r.kind.as_str(), period = %r.period_start, records = r.totals.records, cost = %r.totals.usage_cost, "billing period rated");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "scheduled rating failed; retrying next interval"),
            }
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    });
}

/// Folds the fleet store's dashboard counters every `interval` (rows are appended per statement
/// that changes SIMs or records activations; readers sum them, so fewer rows read faster).
pub fn spawn_counter_compaction(
    fleet: std::sync::Arc<dyn ioto_domain::ports::analytics::AnalyticsFleet>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        loop {
            match fleet.compact_counters().await {
                Ok(0) => {}
                Ok(folded) => tracing::debug!(folded, "dashboard counters folded"),
                Err(e) => {
                    tracing::warn!(error = %e, "folding the dashboard counters failed; retrying next interval")
                }
            }
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    });
}

/// Every `interval`: alert rules evaluated on the clock and due alerts announced; and at every
/// fleet event (from any instance), the rules it may fire. Every instance may run it: alert
/// writes check their version, announcements are claimed.
pub fn spawn_alerts(
    alerts: ioto_app::AlertEvaluator,
    mut events: futures::stream::BoxStream<'static, ioto_domain::events::FleetEvent>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    use futures::StreamExt as _;
    let on_events = alerts.clone();
    let mut stop = shutdown.clone();
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                e = events.next() => match e {
                    Some(e) => e,
                    None => break,
                },
            };
            if let Err(e) = on_events.on_event(&event, Utc::now()).await {
                tracing::warn!(error = %e, "alert rules not evaluated for a fleet event");
            }
        }
    });
    tokio::spawn(async move {
        loop {
            match alerts.tick(Utc::now()).await {
                Ok(p) if p.written + p.notifications > 0 => tracing::info!(
                    rules = p.rules,
                    observed = p.observed,
                    written = p.written,
                    notifications = p.notifications,
                    "alert pass"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "the alert pass failed; retrying next interval"),
            }
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    });
}

/// How far back a sweep looks for SIMs with traffic, beyond the time since the last one: the
/// activity of a SIM is recorded a few seconds after it is counted.
const SWEEP_OVERLAP: chrono::Duration = chrono::Duration::minutes(2);

/// How often, at most, the quota pools whose SIMs carried traffic are evaluated between sweeps.
const POOL_PASS_EVERY: Duration = Duration::from_secs(10);

/// Whether a notification tells of a SIM reaching a limit that suspends it.
fn suspends(n: &ioto_domain::events::NotificationCreated) -> bool {
    let q = &n.payload["quota"];
    n.kind == ioto_domain::notify::NotificationKind::QuotaStage.as_str()
        && q["stage"].as_u64() == Some(u64::from(ioto_domain::quota::EXCEEDED))
        && q["action"] == "SUSPEND"
}

/// Every `interval`: the quotas of SIMs with traffic since the last sweep evaluated again (what
/// an evaluation after a counted batch missed), the tenants' SIMs brought in line with their
/// quota defaults, the resumes of a new period marked, then the actions (suspensions at the
/// limit, resumes) sent and those sent before looked at; between sweeps, every
/// [`POOL_PASS_EVERY`] at most, the pools whose SIMs carried traffic evaluated. A SIM reaching a limit that suspends it (told on the bus by whichever
/// instance evaluated it) has its suspension sent at once, not at the next sweep; the actions
/// are claimed, so instances woken together send it once.
pub fn spawn_quotas(
    quotas: ioto_app::QuotaService,
    mut events: futures::stream::BoxStream<'static, ioto_domain::events::FleetEvent>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    use futures::StreamExt as _;
    tokio::spawn(async move {
        let mut since = Utc::now() - SWEEP_OVERLAP;
        let mut upkept: Option<chrono::DateTime<Utc>> = None;
        let mut next_sweep = tokio::time::Instant::now();
        let pool_every = interval.min(POOL_PASS_EVERY);
        let mut next_pools = tokio::time::Instant::now() + pool_every;
        let mut events_open = true;
        loop {
            let now = Utc::now();
            let sweep = tokio::time::Instant::now() >= next_sweep;
            if sweep {
                next_sweep = tokio::time::Instant::now() + interval;
            }
            // Between sweeps, the pools whose SIMs carried traffic (a sweep evaluates them all).
            let pool_pass = !sweep && tokio::time::Instant::now() >= next_pools;
            if sweep || pool_pass {
                next_pools = tokio::time::Instant::now() + pool_every;
            }
            if pool_pass {
                match quotas.pool_pass(now).await {
                    Ok(p) if !p.is_quiet() => tracing::info!(
                        pools = p.pools,
                        reached = p.stages_reached,
                        exceeded = p.exceeded,
                        not_evaluated = p.not_evaluated,
                        requested = p.actions.requested,
                        "quota pools with traffic"
                    ),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "the quota pool pass failed; retrying next interval")
                    }
                }
            }
            let swept = if sweep {
                Some(quotas.evaluator().sweep(since, now).await)
            } else {
                None
            };
            match swept {
                None => {}
                Some(Ok(found)) => {
                    since = now - SWEEP_OVERLAP;
                    if found.stages_reached > 0 {
                        tracing::info!(
                            quotas = found.quotas,
                            reached = found.stages_reached,
                            exceeded = found.exceeded,
                            "quota sweep"
                        );
                    }
                }
                Some(Err(e)) => tracing::warn!(error = %e, "the quota sweep failed; retrying next interval"),
            }
            if sweep {
                // SIMs added or moved to another plan take their default; SIMs a quota
                // suspended are resumed when their next period starts.
                // Every SIM at the first upkeep, then those created or changed since the last.
                match quotas.upkeep(upkept, now).await {
                    Ok((d, resumes)) => {
                        upkept = Some(now - SWEEP_OVERLAP);
                        if d.added + d.changed + d.removed + resumes > 0 {
                            tracing::info!(
                                added = d.added,
                                changed = d.changed,
                                removed = d.removed,
                                resumes,
                                "quota defaults followed, resumes due"
                            )
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "quota upkeep failed; retrying next interval"),
                }
                // Quota pools: every pool evaluated, its resumes due marked, its actions sent.
                match quotas.pool_sweep(now).await {
                    Ok(p) if !p.is_quiet() => tracing::info!(
                        pools = p.pools,
                        reached = p.stages_reached,
                        exceeded = p.exceeded,
                        not_evaluated = p.not_evaluated,
                        resumes = p.resumes,
                        requested = p.actions.requested,
                        done = p.actions.done,
                        failed = p.actions.failed,
                        "quota pool sweep"
                    ),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "the quota pool sweep failed; retrying next interval")
                    }
                }
            }
            match quotas.run_actions(now).await {
                Ok(p) if p.requested + p.done + p.failed > 0 => {
                    tracing::info!(
                        requested = p.requested,
                        done = p.done,
                        failed = p.failed,
                        "quota actions"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "quota actions failed; retrying next interval"),
            }
            // Until the next sweep, or a limit reached that suspends.
            loop {
                tokio::select! {
                    _ = shutdown.wait_for(|s| *s) => return,
                    _ = tokio::time::sleep_until(next_sweep) => break,
                    _ = tokio::time::sleep_until(next_pools) => break,
                    e = events.next(), if events_open => match e {
                        Some(ioto_domain::events::FleetEvent::Notification(n)) if suspends(&n) => break,
                        Some(_) => {}
                        None => events_open = false,
                    },
                }
            }
        }
    });
}

/// How long after start the first forecast pass runs: the server serves first, and a demo shows
/// forecasts within its first minute.
const FORECAST_FIRST_DELAY: Duration = Duration::from_secs(30);

/// Forecasts and anomalies: a pass shortly after start, then every `interval` (after the end of
/// the one before). Any number of instances may run it: each tenant's pass is claimed with a
/// lease in the transactional store (`forecast_runs`), so two instances never pass one tenant
/// at once, and a tenant passed by any instance within the interval is passed over — the
/// instances share the tenants instead of repeating them. Were a lease to lapse mid-pass, the
/// second pass would write the same forecasts (an upsert per subject) and store no anomaly twice
/// (a unique key per SIM, kind, day and value).
pub fn spawn_forecasts(
    forecasts: ioto_app::ForecastService,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(FORECAST_FIRST_DELAY) => {}
        }
        let every = chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::hours(1));
        loop {
            match forecasts.scheduled_pass(Utc::now(), every).await {
                // A tenant whose pass failed is logged by the pass.
                Ok(p) => {
                    if p.tenants > 0 {
                        tracing::info!(
                            tenants = p.tenants,
                            skipped = p.skipped,
                            partial = p.partial,
                            sims = p.sims,
                            unchanged = p.unchanged,
                            forecasts = p.forecasts,
                            anomalies = p.anomalies_new,
                            advice = p.advice,
                            seconds = p.duration.as_secs_f64(),
                            census_seconds = p.phases.census.as_secs_f64(),
                            reads_seconds = p.phases.reads.as_secs_f64(),
                            compute_seconds = p.phases.compute.as_secs_f64(),
                            writes_seconds = p.phases.writes.as_secs_f64(),
                            "forecast pass"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "the forecast pass failed; retrying next interval"),
            }
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    });
}
