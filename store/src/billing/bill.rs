//! What a bill needs from the fleet (tariff plans, SIMs active in a month) and the one-off charges added to an invoice, on sea-orm.

use async_trait::async_trait;
use chrono::{Months, NaiveDate};
use ioto_domain::billing::invoice::InvoiceCharge;
use ioto_domain::billing::money::Price;
use ioto_domain::billing::rating::{ActiveSimMonth, BillableSim};
use ioto_domain::ports::billing::{BillingFleet, InvoiceChargeStore};
use ioto_domain::{CustomerId, Error, Iccid, Result, Scope, TenantId};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, Set,
    Statement,
};
use uuid::Uuid;

use crate::entities::invoice_charge;
use crate::error::db;
use crate::pool::commit;

use super::{corrupt, SqlBilling};

#[derive(FromQueryResult)]
struct SimRow {
    iccid: String,
    customer_id: Option<Uuid>,
    tariff_plan: Option<String>,
}

fn billable(r: SimRow) -> Result<BillableSim> {
    Ok(BillableSim {
        iccid: Iccid::parse(&r.iccid).map_err(|e| corrupt("ICCID", e))?,
        customer_id: r.customer_id.map(CustomerId),
        tariff_plan: r.tariff_plan,
    })
}

#[async_trait]
impl BillingFleet for SqlBilling {
    async fn billable_sims(&self, tenant: TenantId) -> Result<Vec<BillableSim>> {
        let backend = self.backend();
        let sql = match backend {
            DbBackend::Postgres => "SELECT iccid, customer_id, tariff_plan FROM sims WHERE tenant_id = $1",
            _ => "SELECT iccid, customer_id, tariff_plan FROM sims WHERE tenant_id = ?",
        };
        let txn = self.begin(Scope::Platform).await?;
        let rows = SimRow::find_by_statement(Statement::from_sql_and_values(backend, sql, [tenant.0.into()]))
            .all(&txn)
            .await
            .map_err(db)?;
        commit(txn).await?;
        rows.into_iter().map(billable).collect()
    }

    async fn active_sims(&self, tenant: TenantId, month: NaiveDate) -> Result<Vec<ActiveSimMonth>> {
        let backend = self.backend();
        let start = month.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        let end = (month + Months::new(1))
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc();
        // Active when the month began (the last state recorded before it), or made active in it.
        let sql = match backend {
            DbBackend::Postgres => {
                "SELECT s.iccid, s.customer_id, s.tariff_plan FROM sims s WHERE s.tenant_id = $1 AND ( \
                   EXISTS (SELECT 1 FROM audit_events a WHERE a.entity_kind = 'SIM' AND a.entity_id = s.id \
                           AND a.at >= $2 AND a.at < $3 AND a.new_value->>'state' = 'ACTIVE') \
                   OR (SELECT a.new_value->>'state' FROM audit_events a WHERE a.entity_kind = 'SIM' \
                       AND a.entity_id = s.id AND a.at < $2 AND a.new_value ? 'state' \
                       ORDER BY a.at DESC, a.id DESC LIMIT 1) = 'ACTIVE')"
            }
            _ => {
                "SELECT s.iccid, s.customer_id, s.tariff_plan FROM sims s WHERE s.tenant_id = ?1 AND ( \
                   EXISTS (SELECT 1 FROM audit_events a WHERE a.entity_kind = 'SIM' AND a.entity_id = s.id \
                           AND a.at >= ?2 AND a.at < ?3 AND json_extract(a.new_value, '$.state') = 'ACTIVE') \
                   OR (SELECT json_extract(a.new_value, '$.state') FROM audit_events a WHERE a.entity_kind = 'SIM' \
                       AND a.entity_id = s.id AND a.at < ?2 AND json_extract(a.new_value, '$.state') IS NOT NULL \
                       ORDER BY a.at DESC, a.id DESC LIMIT 1) = 'ACTIVE')"
            }
        };
        let txn = self.begin(Scope::Platform).await?;
        let rows = SimRow::find_by_statement(Statement::from_sql_and_values(
            backend,
            sql,
            [tenant.0.into(), start.into(), end.into()],
        ))
        .all(&txn)
        .await
        .map_err(db)?;
        commit(txn).await?;
        rows.into_iter()
            .map(|r| {
                Ok(ActiveSimMonth {
                    month,
                    sim: billable(r)?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl InvoiceChargeStore for SqlBilling {
    async fn add_charge(&self, charge: &InvoiceCharge) -> Result<()> {
        let txn = self.begin(Scope::Platform).await?;
        invoice_charge::ActiveModel {
            id: Set(charge.id),
            tenant_id: Set(charge.tenant_id.0),
            period_start: Set(charge.period_start),
            description: Set(charge.description.clone()),
            quantity: Set(i64::try_from(charge.quantity)
                .map_err(|_| Error::invalid("quantity", format!("at most {}", i64::MAX)))?),
            unit_price_micros: Set(charge.unit_price.micros()),
            credit: Set(charge.credit),
            created_at: Set(charge.created_at),
            created_by: Set(charge.created_by.clone()),
        }
        .insert(&txn)
        .await
        .map_err(db)?;
        commit(txn).await
    }

    async fn charges(&self, tenant: TenantId, period_start: NaiveDate) -> Result<Vec<InvoiceCharge>> {
        let txn = self.begin(Scope::Platform).await?;
        let rows = invoice_charge::Entity::find()
            .filter(invoice_charge::Column::TenantId.eq(tenant.0))
            .filter(invoice_charge::Column::PeriodStart.eq(period_start))
            .order_by_asc(invoice_charge::Column::CreatedAt)
            .all(&txn)
            .await
            .map_err(db)?;
        commit(txn).await?;
        rows.into_iter()
            .map(|r| {
                Ok(InvoiceCharge {
                    id: r.id,
                    tenant_id: TenantId(r.tenant_id),
                    period_start: r.period_start,
                    description: r.description,
                    quantity: r.quantity.unsigned_abs(),
                    unit_price: Price::from_micros(r.unit_price_micros)?,
                    credit: r.credit,
                    created_at: r.created_at,
                    created_by: r.created_by,
                })
            })
            .collect()
    }
}
