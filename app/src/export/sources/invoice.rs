//! A tenant's invoice lines for a period.

use super::*;

use crate::export::ExportService;
use ioto_domain::billing::money::COST_SCALE;
use ioto_domain::export::{ColumnType, ExportBatch, ExportColumn};
use ioto_domain::{Actor, Error, Result, TenantId};

pub(super) fn invoice_columns(currency: Option<&str>) -> Vec<ExportColumn> {
    use ColumnType::*;
    vec![
        col("tenant_id", Text),
        col("period_start", Date),
        col("period_end", Date),
        col("line_kind", Text),
        col("item_code", Text),
        col("description", Text),
        col(
            "quantity",
            Decimal {
                scale: COST_SCALE as u8,
            },
        ),
        col("unit", Text),
        col("unit_price", Decimal { scale: 6 }),
        col("amount", cost(currency)),
        col("exact_amount", cost(currency)),
        col("adjusts_period_start", Date),
        col("currency", Text),
        col("is_final", Bool),
        col("rating_run_id", Text),
    ]
}

pub(super) async fn invoice(
    svc: &ExportService,
    actor: &Actor,
    tenant: TenantId,
    day: chrono::NaiveDate,
) -> Result<(Vec<ExportColumn>, ExportBatch)> {
    let inv = svc
        .billing
        .tenant_invoice(actor, tenant, day)
        .await?
        .ok_or_else(|| {
            Error::invalid(
                "filter.day",
                format!("the tenant's billing period holding {day} has not been rated yet"),
            )
        })?;
    let currency = inv.currency.code();
    let columns = invoice_columns(Some(currency));
    let mut b = ExportBatch::new(&columns, inv.lines.len());
    for l in &inv.lines {
        b.push_text(0, text(inv.tenant_id));
        b.push_date(1, Some(inv.period_start));
        b.push_date(2, Some(inv.period_end));
        b.push_text(3, text(l.kind.as_str()));
        b.push_text(4, Some(l.item_code.clone()));
        b.push_text(5, Some(l.description.clone()));
        b.push_decimal(6, Some(l.quantity.units()));
        b.push_text(7, text(l.unit));
        b.push_decimal(8, Some(i128::from(l.unit_price.micros())));
        b.push_decimal(9, Some(l.amount.units()));
        b.push_decimal(10, Some(l.exact_amount.units()));
        b.push_date(11, l.adjusts_period_start);
        b.push_text(12, text(currency));
        b.push_bool(13, Some(inv.is_final));
        b.push_text(14, text(inv.run_id));
    }
    Ok((columns, b))
}
