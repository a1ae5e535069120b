//! Drill-down from a row of `usageAnalytics` to its SIMs, and the carrier breakdown.

use super::dashboard::collect_carriers;
use super::*;
use chrono::{DateTime, Utc};
use ioto_domain::analytics::dashboard::CarrierShare;
use ioto_domain::analytics::plan::{self, bounds};
use ioto_domain::analytics::{
    AnalyticsFilter, AnalyticsResult, DimValue, Dimension, Measure, Measures, MAX_ROWS,
};
use ioto_domain::billing::money::Currency;
use ioto_domain::identifiers::Iccid;
use ioto_domain::{Actor, CustomerId, Error, Result, TenantId};

/// One aggregate row to drill into: the values of its dimensions (`None`: not a dimension of
/// the row; for sub-customer, label and tariff plan `Some(None)` is the row of SIMs without one).
#[derive(Debug, Clone, Default)]
pub struct DrillRow {
    pub time: Option<DateTime<Utc>>,
    pub network: Option<ioto_domain::identifiers::MccMnc>,
    pub country: Option<String>,
    pub sub_customer: Option<Option<CustomerId>>,
    pub label: Option<Option<String>>,
    pub tariff_plan: Option<Option<String>>,
    pub rat: Option<ioto_domain::usage::RadioAccessType>,
}

impl AnalyticsService {
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
                Some((ioto_domain::analytics::Unserved::NoRateCard, _)) => {}
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
}
