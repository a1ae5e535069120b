//! Analytics use cases: `usageAnalytics`, its drill-down to SIMs, the carrier breakdown and the
//! dashboard. Plans come from [`ioto_domain::analytics::plan`]; this checks who may ask, looks up what
//! the fleet knows of the SIMs and reads the cubes.

mod dashboard;
mod drill;

pub use self::drill::DrillRow;

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::billing::BillingService;
use ioto_domain::analytics::plan::{self, bounds, choose_cube, cube_query, roll_up, SimFacts};
use ioto_domain::analytics::{
    AnalyticsFilter, AnalyticsRequest, AnalyticsResult, Dimension, Measure, Measures, Preset,
    MAX_FILTER_VALUES, MAX_ROWS,
};
use ioto_domain::identifiers::Iccid;
use ioto_domain::ports::analytics::AnalyticsFleet;
use ioto_domain::ports::{FleetChanges, Granularity, UsageReader};
use ioto_domain::usage::networks::Networks;
use ioto_domain::{Actor, CustomerId, Error, Permission, Result, Role, Scope, TenantId};

/// The time range of a request: a preset, or instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    Preset(Preset),
    Custom { from: DateTime<Utc>, to: DateTime<Utc> },
}

/// A request as a client sends it.
#[derive(Debug, Clone)]
pub struct AnalyticsQuery {
    pub measures: Vec<Measure>,
    pub dimensions: Vec<Dimension>,
    pub label_key: Option<String>,
    pub filter: AnalyticsFilter,
    pub range: RangeSpec,
    /// `None`: the preset's own granularity, or one bucket for a custom range.
    pub granularity: Option<Granularity>,
    /// IANA name; UTC when absent.
    pub time_zone: Option<String>,
}

/// Parses an IANA time zone name.
pub fn parse_time_zone(field: &str, name: Option<&str>) -> Result<Tz> {
    match name {
        None => Ok(Tz::UTC),
        Some(n) => Tz::from_str(n.trim()).map_err(|_| {
            Error::invalid(
                field,
                format!("'{n}' is not an IANA time zone name (for example Europe/Berlin, America/New_York or UTC)"),
            )
        })}
}

#[derive(Clone)]
pub struct AnalyticsService {
    usage: Arc<dyn UsageReader>,
    fleet: Arc<dyn AnalyticsFleet>,
    settings: Arc<dyn FleetChanges>,
    billing: BillingService,
    networks: &'static Networks,
    /// Time spent waiting for the stores, summed (nanoseconds): the bench subtracts it from a
    /// request's time to get the API layer's own share.
    store_nanos: Arc<AtomicU64>,
}

impl AnalyticsService {
    pub fn new(
        usage: Arc<dyn UsageReader>,
        fleet: Arc<dyn AnalyticsFleet>,
        settings: Arc<dyn FleetChanges>,
        billing: BillingService,
    ) -> Self {
        Self {
            usage,
            fleet,
            settings,
            billing,
            networks: Networks::builtin(),
            store_nanos: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Nanoseconds spent waiting for the usage and fleet stores since start.
    pub fn store_nanos(&self) -> u64 {
        self.store_nanos.load(Ordering::Relaxed)
    }

    async fn timed<T>(&self, call: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let started = Instant::now();
        let out = call.await;
        let spent = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.store_nanos.fetch_add(spent, Ordering::Relaxed);
        out
    }

    /// The tenant and the sub-customer the caller's answer is limited to.
    async fn scope(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        customer: Option<CustomerId>,
    ) -> Result<(TenantId, Option<CustomerId>)> {
        actor.require(Permission::ReadSims, "read usage analytics")?;
        let tenant = actor.target_tenant(tenant)?;
        if actor.role == Role::CustomerUser {
            let s = self.settings.settings(actor.scope(), tenant).await?;
            if !s.customers_see_sims {
                return Err(Error::Forbidden(
                    "your provider shares device data only; SIMs and their usage are not visible to customers".into(),
                ));
            }
        }
        let customer = match (actor.customer_id, customer) {
            (Some(own), Some(asked)) if own != asked => return Err(Error::not_found("customer", asked)),
            (Some(own), _) => Some(own),
            (None, asked) => asked,
        };
        Ok((tenant, customer))
    }

    /// Builds the request; filter lists are bounded ([`MAX_FILTER_VALUES`] each).
    fn request(&self, q: AnalyticsQuery, customer: Option<CustomerId>) -> Result<AnalyticsRequest> {
        if q.measures.is_empty() {
            return Err(Error::invalid(
                "measures",
                "ask for at least one of BYTES_IN, BYTES_OUT, BYTES_TOTAL, RATED_BYTES, COST, ACTIVE_SIMS, SESSIONS",
            ));
        }
        let f = &q.filter;
        for (field, values) in [
            ("filter.iccids", f.iccids.len()),
            ("filter.networks", f.networks.len()),
            ("filter.countries", f.countries.len()),
            ("filter.labels", f.labels.len()),
            ("filter.tariffPlans", f.tariff_plans.len()),
            ("filter.rats", f.rats.len()),
        ] {
            if values > MAX_FILTER_VALUES {
                return Err(Error::invalid(
                    field,
                    format!(
                        "lists {values} values; at most {MAX_FILTER_VALUES} (group by a label or a sub-customer for larger sets)"
                    ),
                ));
            }
        }
        for (i, (key, _)) in f.labels.iter().enumerate() {
            if key.trim().is_empty() || key.len() > 100 {
                return Err(Error::invalid(
                    format!("filter.labels[{i}].key"),
                    "a label key has 1 to 100 characters",
                ));
            }
        }
        if q.label_key.as_ref().is_some_and(|k| k.len() > 100) {
            return Err(Error::invalid("labelKey", "a label key has 1 to 100 characters"));
        }
        for (i, d) in q.dimensions.iter().enumerate() {
            if q.dimensions[..i].contains(d) {
                return Err(Error::invalid(format!("dimensions[{i}]"), "is given twice"));
            }
        }
        if q.dimensions.contains(&Dimension::Label)
            && q.label_key.as_deref().is_none_or(|k| k.trim().is_empty())
        {
            return Err(Error::invalid(
                "labelKey",
                "name the label to group by when dimensions include LABEL",
            ));
        }
        let tz = parse_time_zone("timeZone", q.time_zone.as_deref())?;
        let (from, to, granularity) = match q.range {
            RangeSpec::Preset(p) => {
                let (from, to, g) = plan::resolve_range(p, tz, Utc::now());
                (from, to, Some(q.granularity.unwrap_or(g)))
            }
            RangeSpec::Custom { from, to } => (from, to, q.granularity),
        };
        let mut filter = q.filter;
        filter.customer = customer;
        Ok(AnalyticsRequest {
            measures: q.measures,
            dimensions: q.dimensions,
            label_key: q.label_key,
            filter,
            from,
            to,
            granularity,
            time_zone: tz,
        })
    }

    /// Answers one analytics request.
    pub async fn usage_analytics(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        q: AnalyticsQuery,
    ) -> Result<AnalyticsResult> {
        let (tenant, customer) = self.scope(actor, tenant, q.filter.customer).await?;
        if q.measures.iter().any(|m| m.is_rated()) {
            self.billing.cost_scope(actor, Some(tenant)).await?;
        }
        let req = self.request(q, customer)?;
        self.answer(actor.scope(), tenant, &req, MAX_ROWS).await
    }

    async fn answer(
        &self,
        scope: Scope,
        tenant: TenantId,
        req: &AnalyticsRequest,
        max_rows: usize,
    ) -> Result<AnalyticsResult> {
        let bounds = bounds(req)?;
        let mut result = AnalyticsResult {
            source: None,
            unserved: None,
            from: req.from,
            to: req.to,
            granularity: req.granularity,
            time_zone: req.time_zone,
            currency: None,
            rows: Vec::new(),
            totals: Measures::default(),
        };
        let cube = match choose_cube(req, &bounds) {
            Ok(c) => c,
            Err(why) => {
                result.unserved = Some(why);
                return Ok(result);
            }
        };
        result.source = Some(cube);
        let needs_facts = req.dimensions.contains(&Dimension::Label)
            || req.dimensions.contains(&Dimension::TariffPlan)
            || !req.filter.labels.is_empty()
            || !req.filter.tariff_plans.is_empty();
        let mut facts: HashMap<Iccid, SimFacts> = HashMap::new();
        let mut chosen: Option<Vec<Iccid>> = None;
        if needs_facts {
            let all = self
                .timed(self.fleet.sim_facts(scope, tenant, req.filter.customer))
                .await?;
            let filtering = !req.filter.labels.is_empty() || !req.filter.tariff_plans.is_empty();
            let mut keep = Vec::new();
            for s in all {
                let labels: BTreeMap<String, String> = s
                    .labels
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                let matches = req.filter.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
                    && (req.filter.tariff_plans.is_empty()
                        || s.tariff_plan
                            .as_ref()
                            .is_some_and(|p| req.filter.tariff_plans.contains(p)));
                if filtering && matches {
                    keep.push(s.iccid.clone());
                }
                facts.insert(
                    s.iccid,
                    SimFacts {
                        labels,
                        tariff_plan: s.tariff_plan,
                    },
                );
            }
            if filtering {
                chosen = Some(keep);
            }
        }
        let mut plan = cube_query(req, cube, bounds, chosen, self.networks);
        if cube.is_rated() {
            match self
                .billing
                .current_retail_runs(tenant, day_of(req.from), day_after(req.to))
                .await?
            {
                Some((currency, runs)) => {
                    result.currency = Some(currency);
                    plan.query.runs = runs;
                }
                None => {
                    result.source = None;
                    result.unserved = Some((
                        ioto_domain::analytics::Unserved::NoRateCard,
                        "the tenant has no retail rate card, so nothing is rated".into(),
                    ));
                    return Ok(result);
                }
            }
        }
        // The rows and, when SIMs are counted by the store, the SIMs over the whole range (a SIM
        // in several rows counts once): two reads, sent together.
        let whole = (req.measures.contains(&Measure::ActiveSims) && !plan.query.group.sim)
            .then(|| plan.query.sims_over_range());
        let (rows, whole_rows) = self
            .timed(async {
                futures::try_join!(self.usage.cube_rows(tenant, &plan.query), async {
                    match &whole {
                        Some(q) => self.usage.cube_rows(tenant, q).await,
                        None => Ok(Vec::new()),
                    }
                })
            })
            .await?;
        result.rows = roll_up(req, &plan, &rows, &facts, self.networks, max_rows)?;
        let sims_total = whole_rows.iter().map(|r| r.sims).sum();
        result.totals = plan::totals(&rows, plan.query.group.sim, sims_total);
        Ok(result)
    }
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

fn day_of(t: DateTime<Utc>) -> NaiveDate {
    t.date_naive()
}

/// The first day after the one holding the instant just before `t`.
fn day_after(t: DateTime<Utc>) -> NaiveDate {
    (t - Duration::seconds(1)).date_naive() + Duration::days(1)
}
