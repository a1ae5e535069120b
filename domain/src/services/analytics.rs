//! Analytics use cases: `usageAnalytics`, its drill-down to SIMs, the carrier breakdown and the
//! dashboard. Plans come from [`crate::analytics::plan`]; this checks who may ask, looks up what
//! the fleet knows of the SIMs and reads the cubes.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::analytics::dashboard::{project, CarrierShare, Dashboard};
use crate::analytics::plan::{self, bounds, choose_cube, cube_query, local_midnight, roll_up, SimFacts};
use crate::analytics::{
    AnalyticsFilter, AnalyticsRequest, AnalyticsResult, AnalyticsRow, Cube, CubeFilter, CubeGroup, CubeQuery,
    DimValue, Dimension, Measure, Measures, Preset, MAX_FILTER_VALUES, MAX_ROWS,
};
use crate::billing::money::{Cost, Currency};
use crate::fleet::sim::SimState;
use crate::identifiers::Iccid;
use crate::ports::analytics::AnalyticsFleet;
use crate::ports::{FleetChanges, Granularity, UsageReader};
use crate::services::billing::BillingService;
use crate::services::usage::ONLINE_WITHIN;
use crate::usage::networks::Networks;
use crate::{Actor, CustomerId, Error, Permission, Result, Role, Scope, TenantId};

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

/// One aggregate row to drill into: the values of its dimensions (`None`: not a dimension of
/// the row; for sub-customer, label and tariff plan `Some(None)` is the row of SIMs without one).
#[derive(Debug, Clone, Default)]
pub struct DrillRow {
    pub time: Option<DateTime<Utc>>,
    pub network: Option<crate::identifiers::MccMnc>,
    pub country: Option<String>,
    pub sub_customer: Option<Option<CustomerId>>,
    pub label: Option<Option<String>>,
    pub tariff_plan: Option<Option<String>>,
    pub rat: Option<crate::usage::RadioAccessType>,
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
        }),
    }
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
                        crate::analytics::Unserved::NoRateCard,
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

    /// The SIMs behind one aggregate row of `q`, most bytes first (then by ICCID).
    pub async fn drill_down(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        mut q: AnalyticsQuery,
        row: DrillRow,
    ) -> Result<(AnalyticsResult, Vec<(Iccid, Measures)>)> {
        let mut customer = q.filter.customer;
        if let Some(c) = row.sub_customer {
            match c {
                Some(c) => customer = Some(c),
                None => {
                    return Err(Error::invalid(
                        "row.subCustomer",
                        "drilling into SIMs without a sub-customer is done with a filter on the fleet; give a sub-customer id",
                    ))
                }
            }
        }
        let (tenant, customer) = self.scope(actor, tenant, customer).await?;
        if q.measures.iter().any(|m| m.is_rated()) {
            self.billing.cost_scope(actor, Some(tenant)).await?;
        }
        if let Some(n) = row.network {
            q.filter.networks = vec![n];
        }
        if let Some(c) = row.country {
            if c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_uppercase()) {
                return Err(Error::invalid(
                    "row.country",
                    "must be an ISO 3166 alpha-2 code such as DE",
                ));
            }
            q.filter.countries = vec![c];
        }
        if let Some(rat) = row.rat {
            q.filter.rats = vec![rat];
        }
        if let Some(v) = row.label {
            let Some(key) = q.label_key.clone() else {
                return Err(Error::invalid(
                    "labelKey",
                    "name the label the row was grouped by",
                ));
            };
            match v {
                Some(v) => q.filter.labels.push((key, v)),
                None => {
                    return Err(Error::invalid(
                        "row.label",
                        "give the label value of the row to drill into",
                    ));
                }
            }
        }
        if let Some(p) = row.tariff_plan {
            match p {
                Some(p) => q.filter.tariff_plans = vec![p],
                None => {
                    return Err(Error::invalid(
                        "row.tariffPlan",
                        "give the tariff plan of the row to drill into",
                    ))
                }
            }
        }
        if !q.measures.contains(&Measure::BytesTotal) {
            q.measures.push(Measure::BytesTotal);
        }
        q.dimensions = vec![Dimension::Sim];
        let mut req = self.request(q, customer)?;
        if let Some(t) = row.time {
            let g = req.granularity.ok_or_else(|| {
                Error::invalid(
                    "row.time",
                    "the request has no granularity, so its rows have no time bucket",
                )
            })?;
            let start = plan::bucket_start(req.time_zone, g, t);
            if start != t || t < req.from || t >= req.to {
                return Err(Error::invalid(
                    "row.time",
                    "is not the start of a time bucket of the request",
                ));
            }
            let b = bounds(&req)?;
            let i = b.partition_point(|x| *x <= t);
            req.from = t;
            req.to = b.get(i).copied().unwrap_or(req.to);
        }
        req.granularity = None;
        let result = self.answer(actor.scope(), tenant, &req, usize::MAX).await?;
        let mut sims: Vec<(Iccid, Measures)> = Vec::with_capacity(result.rows.len());
        for r in &result.rows {
            if let Some(DimValue::Text(Some(iccid))) = r.dims.first() {
                sims.push((Iccid::parse(iccid)?, r.values.clone()));
            }
        }
        sims.sort_by(|a, b| {
            b.1.bytes_total()
                .cmp(&a.1.bytes_total())
                .then_with(|| a.0.cmp(&b.0))
        });
        Ok((result, sims))
    }

    /// Every network with traffic or cost in the range: session bytes, data cost and their
    /// shares of the whole. Cost needs the cost permission (zero where it is not rated yet).
    pub async fn carrier_breakdown(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        customer: Option<CustomerId>,
        range: RangeSpec,
        time_zone: Option<String>,
    ) -> Result<(Vec<CarrierShare>, Option<Currency>)> {
        let (tenant, customer) = self.scope(actor, tenant, customer).await?;
        let with_cost = self.billing.cost_scope(actor, Some(tenant)).await.is_ok();
        let base = AnalyticsQuery {
            measures: vec![Measure::BytesTotal],
            dimensions: vec![Dimension::Network],
            label_key: None,
            filter: AnalyticsFilter::default(),
            range,
            granularity: None,
            time_zone,
        };
        let mut req = self.request(base, customer)?;
        req.granularity = None;
        let traffic = self.answer(actor.scope(), tenant, &req, MAX_ROWS).await?;
        if let Some((_, why)) = traffic.unserved {
            return Err(Error::invalid("timeRange", why));
        }
        let mut by_net: BTreeMap<String, CarrierShare> = BTreeMap::new();
        collect_carriers(&traffic.rows, &mut by_net, |c, m| c.bytes = m.bytes_total())?;
        let mut currency = None;
        if with_cost {
            req.measures = vec![Measure::Cost];
            let cost = self.answer(actor.scope(), tenant, &req, MAX_ROWS).await?;
            match cost.unserved {
                None => {
                    currency = cost.currency;
                    collect_carriers(&cost.rows, &mut by_net, |c, m| c.cost = m.cost)?;
                }
                Some((crate::analytics::Unserved::NoRateCard, _)) => {}
                Some((_, why)) => {
                    return Err(Error::invalid(
                        "timeZone",
                        format!("costs are kept per UTC day and cannot be split by this zone's days: {why}"),
                    ))
                }
            }
        }
        let mut out: Vec<CarrierShare> = by_net.into_values().collect();
        out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.mcc_mnc.cmp(&b.mcc_mnc)));
        Ok((out, currency))
    }

    /// The dashboard of a tenant, or of one sub-customer.
    pub async fn dashboard(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        customer: Option<CustomerId>,
        time_zone: Option<String>,
    ) -> Result<Dashboard> {
        let (tenant, customer) = self.scope(actor, tenant, customer).await?;
        let tz = parse_time_zone("timeZone", time_zone.as_deref())?;
        let now = Utc::now();
        let today = now.date_naive();
        let card = self.billing.retail_billing_period(tenant).await?;
        let (p_from, p_to) = match card {
            Some(p) => p.period_of(today),
            None => crate::billing::rate_card::BillingPeriod::Monthly.period_of(today),
        };
        let (period_from, period_to) = (midnight(p_from), midnight(p_to));

        // Session usage of the period by network (carriers) and over all networks (SIMs counted
        // once), the SIMs in devices with their usage, activations, fleet counts, online SIMs and
        // the rated cost: independent reads, sent together (the stores' share is their wall time).
        let period_bounds = vec![period_from, period_to];
        let period_req = AnalyticsRequest {
            measures: vec![Measure::BytesTotal, Measure::ActiveSims],
            dimensions: vec![Dimension::Network],
            label_key: None,
            filter: AnalyticsFilter {
                customer,
                ..AnalyticsFilter::default()
            },
            from: period_from,
            to: period_to,
            granularity: None,
            time_zone: Tz::UTC,
        };
        let cube = choose_cube(&period_req, &period_bounds).map_err(|(_, why)| Error::Internal(why))?;
        let by_network = CubeQuery {
            cube,
            bounds: period_bounds.clone(),
            group: CubeGroup {
                network: true,
                ..CubeGroup::default()
            },
            filter: CubeFilter {
                customer,
                ..CubeFilter::default()
            },
            runs: Vec::new(),
            count_sims: false,
        };
        let whole = by_network.sims_over_range();
        let today_local = now.with_timezone(&tz).date_naive();
        let first = today_local - Duration::days(29);
        let day_starts: Vec<DateTime<Utc>> = (0..=30)
            .map(|i| local_midnight(tz, first + Duration::days(i)))
            .collect();
        let devices = async {
            let bound = self.fleet.bound_sims(actor.scope(), tenant, customer).await?;
            if bound.is_empty() {
                return Ok((bound, Vec::new()));
            }
            let in_devices = CubeQuery {
                cube: cube.with_sim_column(),
                group: CubeGroup {
                    sim: true,
                    ..CubeGroup::default()
                },
                filter: CubeFilter {
                    customer,
                    iccids: Some(bound.iter().map(|(i, _)| i.clone()).collect()),
                    ..CubeFilter::default()
                },
                ..by_network.clone()
            };
            let rows = self.usage.cube_rows(tenant, &in_devices).await?;
            Ok::<_, Error>((bound, rows))
        };
        let rated = async {
            if self.billing.cost_scope(actor, Some(tenant)).await.is_err() {
                return Ok(None);
            }
            let Some((cur, runs)) = self.billing.current_retail_runs(tenant, p_from, p_to).await? else {
                return Ok(None);
            };
            // No run yet: the period is not rated (no cost, which is not a cost of zero).
            if runs.is_empty() {
                return Ok(Some((cur, None)));
            }
            let fees = self.billing.access_fees(tenant, runs.clone(), customer);
            // The period's cost by network: the traffic query's shape on the rated cube.
            let q = CubeQuery {
                cube: Cube::RatedDaily,
                runs,
                ..by_network.clone()
            };
            let (rows, fees) = futures::try_join!(self.usage.cube_rows(tenant, &q), fees)?;
            Ok::<_, Error>(Some((cur, Some((rows, fees)))))
        };
        let (counts, online_now, rows, whole_rows, (bound, device_rows), activated, rated) = self
            .timed(async {
                futures::try_join!(
                    self.fleet.fleet_counts(actor.scope(), tenant, customer),
                    self.usage.online_sims(tenant, customer, now - ONLINE_WITHIN),
                    self.usage.cube_rows(tenant, &by_network),
                    self.usage.cube_rows(tenant, &whole),
                    devices,
                    self.fleet
                        .activations(actor.scope(), tenant, customer, day_starts[0], day_starts[30]),
                    rated,
                )
            })
            .await?;
        let by_state: HashMap<SimState, u64> = counts.by_state.iter().copied().collect();
        let sims_total: u64 = whole_rows.iter().map(|r| r.sims).sum();
        let usage = plan::totals(&rows, false, sims_total);
        let mut carriers: BTreeMap<String, CarrierShare> = BTreeMap::new();
        for r in &rows {
            if let Some(m) = &r.mcc_mnc {
                let c = carrier(&mut carriers, m);
                c.bytes = c.bytes.saturating_add(r.bytes_in.saturating_add(r.bytes_out));
            }
        }
        let mut by_kind: BTreeMap<Option<String>, u64> = BTreeMap::new();
        let kinds: HashMap<&Iccid, &String> = bound.iter().map(|(i, k)| (i, k)).collect();
        let mut in_devices_bytes = 0u64;
        for r in &device_rows {
            let bytes = r.bytes_in.saturating_add(r.bytes_out);
            if let Some(kind) = r.iccid.as_ref().and_then(|i| kinds.get(i)) {
                let e = by_kind.entry(Some((*kind).clone())).or_default();
                *e = e.saturating_add(bytes);
                in_devices_bytes = in_devices_bytes.saturating_add(bytes);
            }
        }
        by_kind.insert(None, usage.bytes_total().saturating_sub(in_devices_bytes));
        by_kind.retain(|_, v| *v > 0);

        let mut cost_so_far = None;
        let mut projected_cost = None;
        let mut access_fees = None;
        let currency = rated.as_ref().map(|(cur, _)| *cur);
        if let Some((_, Some((rated, fees)))) = rated {
            access_fees = Some(fees);
            let mut total = Cost::default();
            for r in &rated {
                total = total + r.cost;
                if let Some(m) = &r.mcc_mnc {
                    let c = carrier(&mut carriers, m);
                    c.cost = c.cost + r.cost;
                }
            }
            let whole = (period_to - period_from).num_seconds();
            let elapsed = (now - period_from).num_seconds();
            cost_so_far = Some(total);
            projected_cost = Some(project(total, elapsed, whole));
        }
        let mut carriers_by_traffic: Vec<CarrierShare> = carriers.into_values().collect();
        carriers_by_traffic.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.mcc_mnc.cmp(&b.mcc_mnc)));
        let carriers_by_cost = if cost_so_far.is_some() {
            let mut c = carriers_by_traffic.clone();
            c.sort_by(|a, b| b.cost.cmp(&a.cost).then_with(|| a.mcc_mnc.cmp(&b.mcc_mnc)));
            c
        } else {
            Vec::new()
        };

        let mut activations: Vec<(DateTime<Utc>, u64)> = day_starts[..30].iter().map(|d| (*d, 0)).collect();
        for (at, n) in activated {
            let i = day_starts.partition_point(|d| *d <= at);
            if (1..=30).contains(&i) {
                activations[i - 1].1 += n;
            }
        }

        let average_bytes_per_active_sim = usage.bytes_total().checked_div(usage.active_sims).unwrap_or(0);
        Ok(Dashboard {
            period_from,
            period_to,
            sims_by_state: SimState::ALL
                .iter()
                .map(|s| (*s, by_state.get(s).copied().unwrap_or(0)))
                .collect(),
            online_now,
            usage,
            average_bytes_per_active_sim,
            cost_so_far,
            projected_cost,
            access_fees,
            currency,
            carriers_by_traffic,
            carriers_by_cost,
            traffic_by_device_kind: by_kind.into_iter().collect(),
            activations,
            sims_by_tariff_plan: counts.by_tariff_plan,
        })
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

/// The entry of network `m`, created empty.
fn carrier<'a>(
    map: &'a mut BTreeMap<String, CarrierShare>,
    m: &crate::identifiers::MccMnc,
) -> &'a mut CarrierShare {
    map.entry(m.to_string()).or_insert_with(|| CarrierShare {
        mcc_mnc: m.clone(),
        bytes: 0,
        cost: Cost::default(),
    })
}

fn collect_carriers(
    rows: &[AnalyticsRow],
    out: &mut BTreeMap<String, CarrierShare>,
    set: impl Fn(&mut CarrierShare, &Measures),
) -> Result<()> {
    for r in rows {
        if let Some(DimValue::Text(Some(code))) = r.dims.first() {
            let c = carrier(out, &crate::identifiers::MccMnc::parse(code)?);
            set(c, &r.values);
        }
    }
    Ok(())
}
