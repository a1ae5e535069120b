//! Evaluating quotas: what each SIM used in its period, read from the hourly cube (one read per
//! tenant and period), against its limit and stages.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ioto_domain::analytics::{Cube, CubeFilter, CubeGroup, CubeQuery};
use ioto_domain::events::{FleetEvent, NotificationCreated};
use ioto_domain::identifiers::Iccid;
use ioto_domain::notify::Notification;
use ioto_domain::ports::quotas::{QuotaStore, QuotaTarget};
use ioto_domain::ports::{FleetNotifier, UsageReader};
use ioto_domain::quota::{period_of, standing, EXCEEDED};
use ioto_domain::{Result, TenantId};

/// Bytes (up and down) each of these SIMs used between `start` and `end`, from the hourly cube
/// (one read): what quotas and data alert rules measure.
pub(crate) async fn hourly_bytes(
    usage: &dyn UsageReader,
    tenant: TenantId,
    iccids: Vec<Iccid>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<HashMap<Iccid, u64>> {
    let query = by_sim(Cube::UsageHourly, vec![start, end], iccids, false);
    let mut used: HashMap<Iccid, u64> = HashMap::new();
    for r in usage.cube_rows(tenant, &query).await? {
        if let Some(iccid) = r.iccid {
            *used.entry(iccid).or_default() += r.bytes_in + r.bytes_out;
        }
    }
    Ok(used)
}

/// A query of `cube` per SIM (and network, when asked) over `bounds`, for these SIMs.
pub(crate) fn by_sim(cube: Cube, bounds: Vec<DateTime<Utc>>, iccids: Vec<Iccid>, network: bool) -> CubeQuery {
    CubeQuery {
        cube,
        bounds,
        group: CubeGroup {
            sim: true,
            network,
            ..CubeGroup::default()
        },
        filter: CubeFilter {
            iccids: Some(iccids),
            ..CubeFilter::default()
        },
        runs: Vec::new(),
        count_sims: false,
    }
}

/// Most quotas one sweep evaluates again (the SIMs active since the last one).
pub const SWEEP_QUOTAS: u64 = 100_000;

/// What an evaluation found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// Quotas evaluated.
    pub quotas: usize,
    /// Periods whose stage moved up (each with its notification).
    pub stages_reached: usize,
    /// Of those, periods that reached their limit.
    pub exceeded: usize,
}

/// Evaluates quotas against the usage store: after each counted batch (in whichever process
/// counts it) and in a sweep. Cheap to clone.
#[derive(Clone)]
pub struct QuotaEvaluator {
    store: Arc<dyn QuotaStore>,
    usage: Arc<dyn UsageReader>,
    notifier: Arc<dyn FleetNotifier>,
    /// Woken when a notification was written, when this process sends deliveries (they go out
    /// at once rather than at the workers' next poll).
    delivery_wakeup: Option<Arc<tokio::sync::Notify>>,
}

impl QuotaEvaluator {
    pub fn new(
        store: Arc<dyn QuotaStore>,
        usage: Arc<dyn UsageReader>,
        notifier: Arc<dyn FleetNotifier>,
        delivery_wakeup: Option<Arc<tokio::sync::Notify>>,
    ) -> Self {
        Self {
            store,
            usage,
            notifier,
            delivery_wakeup,
        }
    }

    /// Evaluates the quotas of these SIMs at `now` (SIMs without one are passed over). Safe to
    /// repeat: a stage reached already is not reached again.
    pub async fn evaluate(&self, iccids: &[Iccid], now: DateTime<Utc>) -> Result<Evaluation> {
        let targets = self.store.quotas_of(iccids).await?;
        if !targets.is_empty() {
            // What was counted is read as counted.
            self.usage.settle().await?;
        }
        self.evaluate_targets(targets, now).await
    }

    /// Evaluates again the quotas of SIMs that carried traffic since `since`: what an evaluation
    /// after a counted batch missed (a server stopped between counting and evaluating) is
    /// caught here.
    pub async fn sweep(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> Result<Evaluation> {
        let targets = self.store.quotas_active_since(since, None, SWEEP_QUOTAS).await?;
        self.evaluate_targets(targets, now).await
    }

    /// Evaluates the quotas of a tenant's SIMs that carried traffic since `since`: after its
    /// quotas were set by filter or its defaults changed.
    pub async fn sweep_tenant(
        &self,
        tenant: TenantId,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Evaluation> {
        let targets = self
            .store
            .quotas_active_since(since, Some(tenant), SWEEP_QUOTAS)
            .await?;
        if !targets.is_empty() {
            self.usage.settle().await?;
        }
        self.evaluate_targets(targets, now).await
    }

    async fn evaluate_targets(&self, targets: Vec<QuotaTarget>, now: DateTime<Utc>) -> Result<Evaluation> {
        let mut found = Evaluation {
            quotas: targets.len(),
            ..Evaluation::default()
        };
        type Period = (TenantId, DateTime<Utc>, DateTime<Utc>);
        let mut groups: BTreeMap<Period, Vec<QuotaTarget>> = BTreeMap::new();
        for t in targets {
            let (start, end) = period_of(t.time_zone, now);
            groups.entry((t.quota.tenant_id, start, end)).or_default().push(t);
        }
        for ((tenant, start, end), group) in groups {
            let iccids = group.iter().map(|t| t.iccid.clone()).collect();
            let used = hourly_bytes(self.usage.as_ref(), tenant, iccids, start, end).await?;
            for t in group {
                let used = used.get(&t.iccid).copied().unwrap_or(0);
                let period = standing(&t.quota, t.time_zone, used, now);
                let exceeded = period.stage >= EXCEEDED;
                let note = (period.stage > 0).then(|| Notification::quota_stage(&t, &period, now));
                if self.store.advance_quota(&period, note.as_ref()).await? {
                    found.stages_reached += 1;
                    found.exceeded += usize::from(exceeded);
                    if let Some(n) = &note {
                        self.notifier
                            .publish(FleetEvent::Notification(NotificationCreated::of(n)));
                        if let Some(w) = &self.delivery_wakeup {
                            w.notify_one();
                        }
                    }
                }
            }
        }
        Ok(found)
    }
}
