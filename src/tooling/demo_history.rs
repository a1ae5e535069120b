//! The demo's usage history: 90 days of the forecast crate's simulated fleet for the SIMs with
//! live sessions, and today until now, written once per data directory straight into the usage
//! store — the bus would dead-letter the days older than `ingest.max_event_age_days` (35 by
//! default) — with two anomalies on yesterday: one SIM used ten times its usual, another was in a
//! country it had never been to. The first forecast pass therefore has three months to forecast
//! from and those two to find.
//!
//! The history is what `ioto simulate history` publishes ([`super::simulate_history`]), written as
//! the ingest worker would have counted it: each session's rollup through the same counting step,
//! and its CDR.

use std::collections::HashMap;

use anyhow::Context as _;
use chrono::{DateTime, Days, Duration, NaiveDate, NaiveTime, Utc};
use ioto_domain::directory::Tenant;
use ioto_domain::identifiers::{Iccid, MccMnc};
use ioto_domain::ports::{CdrRecord, Granularity, SessionUpdate, UsageStore};
use ioto_domain::usage::{counted_update, step, Step};
use ioto_domain::{CustomerId, Scope, TenantId};
use ioto_forecast::simulate::{simulate_one, DeviceProfile, SimulatedSim};

use super::demo::{DEMO_POOL_SIMS, DEMO_QUOTA_SIMS};
use super::simulate_history::{country_name, Catalogue, PlannedSession, PlannedSim};

/// Days of history before today.
pub const DEMO_HISTORY_DAYS: usize = 90;
/// The live SIM (by index among the SIMs with sessions) that used ten times its usual yesterday.
pub const DEMO_SPIKE_SIM: usize = 20;
/// The live SIM (by index) that was in a country it had never been to yesterday.
pub const DEMO_ROAMING_SIM: usize = 21;
/// The simulator's seed for the demo: the same fleet every time.
const DEMO_HISTORY_SEED: u64 = 55;
/// How much more than its usual the spiking SIM used (and at least 50 MB more).
const DEMO_SPIKE_FACTOR: f64 = 10.0;
const DEMO_SPIKE_LEAST_EXCESS: f64 = 50e6;
/// Where the roaming SIM was: Swisscom, Switzerland, the country of none of the demo's home
/// networks.
const DEMO_ROAMING_NETWORK: &str = "228-01";
/// Days written by one call to the usage store (ClickHouse puts each day of `session_updates` in a
/// partition of its own and refuses an insert reaching more than 100).
const DAYS_PER_WRITE: usize = 10;
/// Today's traffic is written up to this long before the start.
const TODAY_UNTIL: Duration = Duration::minutes(5);

/// What the history holds that the demo tells about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoHistory {
    /// The SIM that used ten times its usual yesterday, how much, and its usual for the day.
    pub spike: Iccid,
    pub spike_bytes: u64,
    pub spike_usual_bytes: u64,
    /// The SIM that was abroad for the first time yesterday, where, and in which country.
    pub roaming: Iccid,
    pub roaming_network: MccMnc,
    pub roaming_country: String,
    /// Sessions written.
    pub sessions: usize,
}

/// Writes the history of the `live` SIMs, each at home on `networks[index % networks.len()]` (as
/// their live sessions are), unless the store holds usage of the tenant's older than three days (a
/// restart). Returns what it wrote, or `None` when it wrote nothing.
pub async fn write(
    engines: &crate::engines::Engines,
    tenant: &Tenant,
    live: &[Iccid],
    networks: &[MccMnc],
) -> anyhow::Result<Option<DemoHistory>> {
    let (Some(spike), Some(roaming)) = (live.get(DEMO_SPIKE_SIM), live.get(DEMO_ROAMING_SIM)) else {
        return Ok(None);
    };
    if networks.is_empty() {
        return Ok(None);
    }
    let now = Utc::now();
    let today = now.date_naive();
    let first_day = today
        .checked_sub_days(Days::new(DEMO_HISTORY_DAYS as u64))
        .context("the demo history's first day")?;
    let midnight = |day: NaiveDate| day.and_time(NaiveTime::MIN).and_utc();
    // Any usage of the tenant's before the last three days: a restart (the live SIMs may be other
    // ones by then, SIMs the example bulk job activated among them).
    let earlier = engines
        .usage
        .customer_usage(
            tenant.id,
            None,
            midnight(first_day),
            midnight(today) - Duration::days(3),
            Granularity::Day,
        )
        .await?;
    if !earlier.is_empty() {
        return Ok(None);
    }
    let owners: HashMap<Iccid, (TenantId, Option<CustomerId>)> = engines
        .fleet
        .sims_by_iccid(Scope::tenant(tenant.id), live)
        .await?
        .into_iter()
        .map(|sim| (sim.iccid, (sim.tenant_id, sim.customer_id)))
        .collect();

    // The completed days and today.
    let days = DEMO_HISTORY_DAYS + 1;
    let simulated = simulated_sims(live.len(), days, first_day);
    let mut catalogue = Catalogue::default();
    let mut plans: Vec<PlannedSim> = live
        .iter()
        .zip(&simulated)
        .enumerate()
        .map(|(index, (iccid, sim))| {
            let home = &networks[index % networks.len()];
            PlannedSim::new(
                iccid.clone(),
                home,
                sim,
                &[],
                first_day,
                DEMO_HISTORY_SEED,
                &mut catalogue,
            )
        })
        .collect();

    // Yesterday's anomalies.
    let yesterday = DEMO_HISTORY_DAYS - 1;
    let (mut spike_bytes, mut spike_usual_bytes) = (0, 0);
    if let Some(plan) = plans.get_mut(DEMO_SPIKE_SIM) {
        let usual = plan.usual(yesterday);
        spike_usual_bytes = usual.round() as u64;
        spike_bytes = (usual * DEMO_SPIKE_FACTOR)
            .max(usual + DEMO_SPIKE_LEAST_EXCESS)
            .round() as u64;
        plan.set_bytes(yesterday, spike_bytes);
    }
    let roaming_network = MccMnc::parse(DEMO_ROAMING_NETWORK)?;
    if let Some(plan) = plans.get_mut(DEMO_ROAMING_SIM) {
        if plan.days.get(yesterday).is_some_and(|day| day.bytes == 0) {
            let usual = plan.usual(yesterday).round() as u64;
            plan.set_bytes(yesterday, usual.max(1_000_000));
        }
        plan.put_on(yesterday, roaming_network.clone());
    }

    let sessions = write_plans(
        engines.usage.as_ref(),
        &plans,
        &owners,
        days,
        Some(now - TODAY_UNTIL),
        true,
    )
    .await?;
    Ok(Some(DemoHistory {
        spike: spike.clone(),
        spike_bytes,
        spike_usual_bytes,
        roaming: roaming.clone(),
        roaming_country: country_name(&roaming_network),
        roaming_network,
        sessions,
    }))
}

/// Writes the first `days` days of each plan's sessions into the usage store as the ingest worker
/// counts them (one rollup per session), with their CDRs when `cdrs`, the SIMs' tenants and
/// sub-customers taken from `owners` (a plan of a SIM not there is passed over). With `today`, the
/// last of those days is today, written up to that time. Writes [`DAYS_PER_WRITE`] days at a time
/// and flushes the store at the end; returns the session updates written.
pub async fn write_plans(
    usage: &dyn UsageStore,
    plans: &[PlannedSim],
    owners: &HashMap<Iccid, (TenantId, Option<CustomerId>)>,
    days: usize,
    today: Option<DateTime<Utc>>,
    cdrs: bool,
) -> anyhow::Result<usize> {
    let mut sessions = 0;
    let mut from = 0;
    while from < days {
        let to = (from + DAYS_PER_WRITE).min(days);
        let mut updates = Vec::new();
        let mut records = Vec::new();
        for plan in plans {
            let Some(&(tenant_id, customer_id)) = owners.get(&plan.iccid) else {
                continue;
            };
            for day in from..to {
                let written: Vec<PlannedSession> = match today {
                    Some(until) if day + 1 == days => plan.day_so_far(day, until).into_iter().collect(),
                    _ => plan.sessions(day),
                };
                for session in &written {
                    updates.extend(counted(plan, session, tenant_id, customer_id));
                    if cdrs {
                        records.push(cdr_record(plan, session, tenant_id, customer_id));
                    }
                }
            }
        }
        sessions += updates.len();
        if !updates.is_empty() {
            usage.write_session_updates(&updates).await?;
        }
        if !records.is_empty() {
            usage.write_cdrs(&records).await?;
        }
        from = to;
    }
    usage.flush_pending().await?;
    Ok(sessions)
}

/// Live SIMs (by index) with a camera's or a gateway's usage: those with a quota of their own or
/// in the pool, so that they pass their limits early in any month, and the two with anomalies.
fn heavy(index: usize) -> bool {
    index < DEMO_QUOTA_SIMS + DEMO_POOL_SIMS || index == DEMO_SPIKE_SIM || index == DEMO_ROAMING_SIM
}

/// The simulated SIMs standing for `n` live SIMs, without anomalies: in the simulator's order,
/// but a camera or a gateway for each [`heavy`] one (the first not taken yet).
fn simulated_sims(n: usize, days: usize, first_day: NaiveDate) -> Vec<SimulatedSim> {
    // Cameras and gateways are three in ten of the simulated fleet: this many are plenty.
    let most = 20 * n + 100;
    let mut spare: Vec<SimulatedSim> = Vec::new();
    let mut next = 0;
    let mut out = Vec::with_capacity(n);
    for index in 0..n {
        let wanted = heavy(index);
        let fits = |sim: &SimulatedSim| {
            !wanted || matches!(sim.profile, DeviceProfile::Camera | DeviceProfile::Gateway)
        };
        let at = loop {
            if let Some(at) = spare.iter().position(&fits) {
                break at;
            }
            if next >= most && !spare.is_empty() {
                break 0;
            }
            spare.push(simulate_one(DEMO_HISTORY_SEED, next, days, first_day, 0.0).0);
            next += 1;
        };
        out.push(spare.remove(at));
    }
    out
}

/// The session as the ingest worker writes its one rollup.
fn counted(
    plan: &PlannedSim,
    session: &PlannedSession,
    tenant: TenantId,
    customer: Option<CustomerId>,
) -> Option<SessionUpdate> {
    let rollup = plan.rollup(session);
    match step(None, &rollup) {
        Ok(Step::Count { delta, progress }) => {
            Some(counted_update(tenant, customer, &rollup, &delta, &progress))
        }
        _ => None,
    }
}

/// The session's CDR as the ingest worker stores it.
fn cdr_record(
    plan: &PlannedSim,
    session: &PlannedSession,
    tenant: TenantId,
    customer: Option<CustomerId>,
) -> CdrRecord {
    let cdr = plan.cdr(session);
    CdrRecord {
        tenant_id: tenant,
        customer_id: customer,
        cdr_id: cdr.cdr_id,
        iccid: cdr.iccid,
        start: cdr.start,
        end: cdr.end,
        mcc_mnc: cdr.mcc_mnc,
        bytes_in: cdr.bytes_in,
        bytes_out: cdr.bytes_out,
        rating_group: cdr.rating_group,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_sims_are_cameras_or_gateways_and_the_others_keep_the_simulators_order() {
        let first_day = NaiveDate::from_ymd_opt(2025, 1, 6).unwrap();
        let sims = simulated_sims(40, 30, first_day);
        assert_eq!(sims.len(), 40);
        for (index, sim) in sims.iter().enumerate() {
            if heavy(index) {
                assert!(
                    matches!(sim.profile, DeviceProfile::Camera | DeviceProfile::Gateway),
                    "{index}: {:?}",
                    sim.profile
                );
            }
        }
        let ids: std::collections::BTreeSet<usize> = sims.iter().map(|sim| sim.id).collect();
        assert_eq!(ids.len(), 40, "each simulated SIM stands for one live SIM");
    }

    #[test]
    fn the_roaming_network_is_abroad_for_the_roaming_sim() {
        use crate::tooling::demo::DEMO_NETWORKS;
        let home = MccMnc::parse(DEMO_NETWORKS[DEMO_ROAMING_SIM % DEMO_NETWORKS.len()]).unwrap();
        let roaming = MccMnc::parse(DEMO_ROAMING_NETWORK).unwrap();
        assert_ne!(country_name(&home), country_name(&roaming));
        for network in DEMO_NETWORKS {
            assert_ne!(country_name(&MccMnc::parse(network).unwrap()), "Switzerland");
        }
    }
}
