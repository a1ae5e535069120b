//! Billing per sub-customer for a period.

use super::*;
use std::collections::HashMap;

use crate::export::ExportService;
use ioto_domain::billing::money::Cost;
use ioto_domain::export::{ColumnType, ExportBatch, ExportColumn};
use ioto_domain::ports::billing::RatedDimension;
use ioto_domain::{Actor, CustomerId, Error, Result, TenantId};

pub(super) fn customer_billing_columns(currency: Option<&str>) -> Vec<ExportColumn> {
    use ColumnType::*;
    vec![
        col("period_start", Date),
        col("period_end", Date),
        col("customer_id", Text),
        col("customer_name", Text),
        col("records", Int),
        col("bytes_in", Int),
        col("bytes_out", Int),
        col("rounded_bytes", Int),
        col("data_cost", cost(currency)),
        col("access_fee_sims", Int),
        col("access_fees", cost(currency)),
        col("total", cost(currency)),
        col("currency", Text),
        col("rating_run_id", Text),
    ]
}

pub(super) async fn customer_billing(
    svc: &ExportService,
    actor: &Actor,
    tenant: Option<TenantId>,
    day: chrono::NaiveDate,
) -> Result<(Vec<ExportColumn>, ExportBatch)> {
    let rated = svc
        .billing
        .rated_usage(actor, tenant, ioto_domain::billing::rate_card::RateCardKind::Retail, day, RatedDimension::Customer)
        .await?
        .ok_or_else(|| {
            Error::invalid(
                "filter.day",
                format!("the billing period holding {day} has not been rated yet; rate it first (rateBillingPeriod) or pick a rated period"),
            )
        })?;
    let currency = rated.currency.code();
    let columns = customer_billing_columns(Some(currency));
    let fees: HashMap<&str, &ioto_domain::ports::billing::FeeSums> =
        rated.fees.iter().map(|(k, f)| (k.as_str(), f)).collect();
    let mut keys: Vec<&str> = rated.usage.iter().map(|(k, _)| k.as_str()).collect();
    keys.extend(
        fees.keys()
            .copied()
            .filter(|k| !rated.usage.iter().any(|(u, _)| u == k)),
    );
    keys.sort_unstable();
    let ids = unique(keys.iter().filter_map(|k| CustomerId::parse(k, "customer").ok()));
    let names = customer_names(svc, actor, ids).await?;
    let usage: HashMap<&str, &ioto_domain::ports::billing::RatedSums> =
        rated.usage.iter().map(|(k, s)| (k.as_str(), s)).collect();
    let mut b = ExportBatch::new(&columns, keys.len());
    for k in keys {
        let customer = CustomerId::parse(k, "customer").ok();
        let u = usage.get(k);
        let f = fees.get(k);
        let data = u.map_or(Cost::ZERO, |u| u.cost);
        let fee = f.map_or(Cost::ZERO, |f| f.fees);
        b.push_date(0, Some(rated.run.period_start));
        b.push_date(1, Some(rated.run.period_end));
        b.push_text(2, customer.map(|c| c.to_string()));
        b.push_text(3, customer.and_then(|c| names.get(&c).cloned()));
        b.push_int(4, int(u.map_or(0, |u| u.records)));
        b.push_int(5, int(u.map_or(0, |u| u.bytes_in)));
        b.push_int(6, int(u.map_or(0, |u| u.bytes_out)));
        b.push_int(7, int(u.map_or(0, |u| u.rounded_bytes)));
        b.push_decimal(8, Some(data.units()));
        b.push_int(9, int(f.map_or(0, |f| f.charges)));
        b.push_decimal(10, Some(fee.units()));
        b.push_decimal(11, Some(data.units().saturating_add(fee.units())));
        b.push_text(12, text(currency));
        b.push_text(13, text(rated.run.id));
    }
    Ok((columns, b))
}
