//! Usage analytics rows, one column per dimension and measure asked for.

use super::*;

use crate::analytics::AnalyticsQuery;
use crate::export::ExportService;
use ioto_domain::analytics::{DimValue, Dimension, Measure};
use ioto_domain::export::{ColumnType, ExportBatch, ExportColumn};
use ioto_domain::{Actor, Error, Result, TenantId};

pub(super) fn dimension_column(d: Dimension, label_key: Option<&str>) -> ExportColumn {
    match d {
        Dimension::Time => col("time", ColumnType::Timestamp),
        Dimension::Network => col("network", ColumnType::Text),
        Dimension::Country => col("country", ColumnType::Text),
        Dimension::SubCustomer => col("sub_customer_id", ColumnType::Text),
        Dimension::Sim => col("iccid", ColumnType::Text),
        Dimension::Label => col(
            &format!("label_{}", label_key.unwrap_or("value")),
            ColumnType::Text,
        ),
        Dimension::TariffPlan => col("tariff_plan", ColumnType::Text),
        Dimension::Rat => col("radio_access_type", ColumnType::Text),
    }
}

pub(super) fn measure_column(m: Measure, currency: Option<&str>) -> ExportColumn {
    match m {
        Measure::BytesIn => col("bytes_in", ColumnType::Int),
        Measure::BytesOut => col("bytes_out", ColumnType::Int),
        Measure::BytesTotal => col("bytes_total", ColumnType::Int),
        Measure::RatedBytes => col("rated_bytes", ColumnType::Int),
        Measure::Cost => col("cost", cost(currency)),
        Measure::ActiveSims => col("active_sims", ColumnType::Int),
        Measure::Sessions => col("sessions", ColumnType::Int),
    }
}

pub(super) fn analytics_columns(q: &AnalyticsQuery, currency: Option<&str>) -> Vec<ExportColumn> {
    let mut columns: Vec<ExportColumn> = q
        .dimensions
        .iter()
        .map(|d| dimension_column(*d, q.label_key.as_deref()))
        .collect();
    columns.extend(q.measures.iter().map(|m| measure_column(*m, currency)));
    columns
}

pub(super) async fn analytics(
    svc: &ExportService,
    actor: &Actor,
    tenant: Option<TenantId>,
    q: &AnalyticsQuery,
) -> Result<(Vec<ExportColumn>, ExportBatch)> {
    let answer = svc.analytics.usage_analytics(actor, tenant, q.clone()).await?;
    if let Some((_, why)) = &answer.unserved {
        return Err(Error::invalid("filter.analytics", why.clone()));
    }
    let currency = answer.currency.map(|c| c.code());
    let columns = analytics_columns(q, currency);
    let mut b = ExportBatch::new(&columns, answer.rows.len());
    for row in &answer.rows {
        for (i, v) in row.dims.iter().enumerate() {
            match v {
                DimValue::Time(t) => b.push_timestamp(i, Some(*t)),
                DimValue::Text(t) => b.push_text(i, t.clone()),
            }
        }
        let base = row.dims.len();
        for (j, m) in q.measures.iter().enumerate() {
            let v = &row.values;
            match m {
                Measure::BytesIn => b.push_int(base + j, int(v.bytes_in)),
                Measure::BytesOut => b.push_int(base + j, int(v.bytes_out)),
                Measure::BytesTotal => b.push_int(base + j, int(v.bytes_total())),
                Measure::RatedBytes => b.push_int(base + j, int(v.rated_bytes)),
                Measure::Cost => b.push_decimal(base + j, Some(v.cost.units())),
                Measure::ActiveSims => b.push_int(base + j, int(v.active_sims)),
                Measure::Sessions => b.push_int(base + j, int(v.sessions)),
            }
        }
    }
    Ok((columns, b))
}
