//! The dashboard: the fleet's counts, today's and the period's usage, top SIMs and carriers, in one
//! answer.

use super::*;
use crate::usage::ONLINE_WITHIN;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use ioto_domain::analytics::dashboard::{project, CarrierShare, Dashboard};
use ioto_domain::analytics::plan::{self, choose_cube, local_midnight};
use ioto_domain::analytics::{
    AnalyticsFilter, AnalyticsRequest, AnalyticsRow, Cube, CubeFilter, CubeGroup, CubeQuery, DimValue,
    Dimension, Measure, Measures,
};
use ioto_domain::billing::money::Cost;
use ioto_domain::fleet::sim::SimState;
use ioto_domain::identifiers::Iccid;
use ioto_domain::{Actor, CustomerId, Error, Result, TenantId};

/// The entry of network `m`, created empty.
pub(super) fn carrier<'a>(
    map: &'a mut BTreeMap<String, CarrierShare>,
    m: &ioto_domain::identifiers::MccMnc,
) -> &'a mut CarrierShare {
    map.entry(m.to_string()).or_insert_with(|| CarrierShare {
        mcc_mnc: m.clone(),
        bytes: 0,
        cost: Cost::default(),
    })
}

pub(super) fn collect_carriers(
    rows: &[AnalyticsRow],
    out: &mut BTreeMap<String, CarrierShare>,
    set: impl Fn(&mut CarrierShare, &Measures),
) -> Result<()> {
    for r in rows {
        if let Some(DimValue::Text(Some(code))) = r.dims.first() {
            let c = carrier(out, &ioto_domain::identifiers::MccMnc::parse(code)?);
            set(c, &r.values);
        }
    }
    Ok(())
}

impl AnalyticsService {
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
            None => ioto_domain::billing::rate_card::BillingPeriod::Monthly.period_of(today),
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
