//! Usage use cases: what a SIM is doing now, and how much it used.

mod metered;

pub use self::metered::MeteredUsage;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use ioto_domain::fleet::{Device, Sim};
use ioto_domain::identifiers::MccMnc;
use ioto_domain::ports::{
    CustomerUsagePoint, Granularity, HistoryQuery, ReconciliationQuery, ReconciliationRow, SessionUpdate,
    TelemetryStore, UsagePoint, UsageReader,
};
use ioto_domain::usage::{RadioAccessType, TelemetryReading};
use ioto_domain::{Actor, CustomerId, Error, Permission, Result, TenantId};

/// A session counts as online while its last update is this recent and it was not terminated.
pub const ONLINE_WITHIN: Duration = Duration::minutes(15);

/// The most periods one usage query returns.
pub const MAX_PERIODS: i64 = 2_000;

/// A SIM's latest session, as shown to people.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub online: bool,
    /// The API names it from the network catalogue.
    pub mcc_mnc: MccMnc,
    pub rat: RadioAccessType,
    pub ip_address: Option<std::net::IpAddr>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub started_at: DateTime<Utc>,
    pub last_update_at: DateTime<Utc>,
}

impl LiveSession {
    pub fn from_update(u: SessionUpdate, now: DateTime<Utc>) -> Self {
        Self {
            online: !u.terminated && now - u.event_time <= ONLINE_WITHIN,
            mcc_mnc: u.mcc_mnc,
            rat: u.rat,
            ip_address: u.ip_address,
            bytes_in: u.total_in,
            bytes_out: u.total_out,
            started_at: u.started_at,
            last_update_at: u.event_time,
        }
    }
}

/// Whether `actor` sees data counted for `customer`: everyone but customer users sees all of a
/// SIM's data; a customer user only what was counted while the SIM was theirs.
fn counted_for(actor: &Actor, customer: Option<CustomerId>) -> bool {
    actor.customer_id.is_none() || actor.customer_id == customer
}

#[derive(Clone)]
pub struct UsageService {
    store: Arc<dyn UsageReader>,
    telemetry: Arc<dyn TelemetryStore>,
}

impl UsageService {
    pub fn new(store: Arc<dyn UsageReader>, telemetry: Arc<dyn TelemetryStore>) -> Self {
        Self { store, telemetry }
    }

    /// The SIM's latest session (the caller has the SIM, so may see it).
    pub async fn live_session(&self, actor: &Actor, sim: &Sim) -> Result<Option<LiveSession>> {
        Ok(self
            .store
            .live_session(sim.tenant_id, &sim.iccid)
            .await?
            .filter(|u| counted_for(actor, u.customer_id))
            .map(|u| LiveSession::from_update(u, Utc::now())))
    }

    /// The SIM's session updates in `[from, to)`, newest first (troubleshooting).
    /// A customer user sees the updates counted while the SIM was theirs (a page may then hold
    /// fewer rows than asked; the next page goes on from its last row).
    pub async fn session_history(
        &self,
        actor: &Actor,
        sim: &Sim,
        query: &HistoryQuery,
    ) -> Result<Vec<SessionUpdate>> {
        if query.to <= query.from {
            return Err(Error::invalid("to", "must be after from"));
        }
        let mut rows = self
            .store
            .session_history(sim.tenant_id, &sim.iccid, query)
            .await?;
        rows.retain(|u| counted_for(actor, u.customer_id));
        Ok(rows)
    }

    /// The SIM's usage in `[from, to)` per period and network.
    /// A customer user sees the bytes counted while the SIM was theirs, not what it used before
    /// it was assigned to them.
    pub async fn sim_usage(
        &self,
        actor: &Actor,
        sim: &Sim,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        granularity: Granularity,
    ) -> Result<Vec<UsagePoint>> {
        check_periods(from, to, granularity)?;
        let points = self
            .store
            .sim_usage(sim.tenant_id, &sim.iccid, from, to, granularity)
            .await?;
        // One point per period and network, over the owners the caller may see.
        let mut merged: std::collections::BTreeMap<(DateTime<Utc>, MccMnc), UsagePoint> =
            std::collections::BTreeMap::new();
        for p in points.into_iter().filter(|p| counted_for(actor, p.customer_id)) {
            merged
                .entry((p.period, p.mcc_mnc.clone()))
                .and_modify(|m| {
                    m.bytes_in += p.bytes_in;
                    m.bytes_out += p.bytes_out;
                })
                // A customer user's points are all theirs; anyone else's are summed over owners.
                .or_insert(UsagePoint {
                    customer_id: actor.customer_id,
                    ..p
                });
        }
        Ok(merged.into_values().collect())
    }

    /// Session bytes against billed (CDR) bytes per SIM and day in `[from, to]` (days, inclusive).
    pub async fn reconciliation(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        mut query: ReconciliationQuery,
    ) -> Result<Vec<ReconciliationRow>> {
        actor.require(Permission::ReadBilling, "compare usage with billing records")?;
        let tenant = actor.target_tenant(tenant)?;
        if query.to < query.from {
            return Err(Error::invalid("to", "must not be before from"));
        }
        let days = (query.to - query.from).num_days() + 1;
        if days > MAX_RECONCILIATION_DAYS {
            return Err(Error::invalid(
                "from",
                format!("the range holds {days} days; at most {MAX_RECONCILIATION_DAYS}"),
            ));
        }
        query.limit = query.limit.min(MAX_RECONCILIATION_ROWS);
        self.store.reconciliation(tenant, &query).await
    }

    /// Usage per sub-customer and network in `[from, to)`. A customer user sees only its own
    /// customer, whatever it asks for.
    pub async fn customer_usage(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        customer: Option<CustomerId>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        granularity: Granularity,
    ) -> Result<Vec<CustomerUsagePoint>> {
        actor.require(Permission::ReadCustomers, "read usage per sub-customer")?;
        let tenant = actor.target_tenant(tenant)?;
        let customer = match (actor.customer_id, customer) {
            (Some(own), Some(asked)) if own != asked => return Err(Error::not_found("customer", asked)),
            (Some(own), _) => Some(own),
            (None, asked) => asked,
        };
        check_periods(from, to, granularity)?;
        self.store
            .customer_usage(tenant, customer, from, to, granularity)
            .await
    }

    /// A device's readings in `[from, to)` (the caller has the device, so may see it).
    pub async fn device_telemetry(
        &self,
        device: &Device,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<TelemetryReading>> {
        if to <= from {
            return Err(Error::invalid("to", "must be after from"));
        }
        self.telemetry
            .device_telemetry(device.tenant_id, device.id, from, to, limit)
            .await
    }
}

/// The widest reconciliation range, in days.
pub const MAX_RECONCILIATION_DAYS: i64 = 366;
/// The most SIM-days one reconciliation returns.
pub const MAX_RECONCILIATION_ROWS: u64 = 10_000;

/// Refuses empty ranges and ranges of more than [`MAX_PERIODS`] periods.
fn check_periods(from: DateTime<Utc>, to: DateTime<Utc>, granularity: Granularity) -> Result<()> {
    if to <= from {
        return Err(Error::invalid("to", "must be after from"));
    }
    let periods = match granularity {
        Granularity::Hour => (to - from).num_hours(),
        Granularity::Day => (to - from).num_days(),
        Granularity::Month => (to - from).num_days() / 28,
        Granularity::Year => (to - from).num_days() / 365,
    };
    if periods > MAX_PERIODS {
        return Err(Error::invalid(
            "from",
            format!("the range holds {periods} periods of this granularity; at most {MAX_PERIODS}"),
        ));
    }
    Ok(())
}
