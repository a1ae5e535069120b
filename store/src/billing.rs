//! Billing on sea-orm, for Postgres and SQLite alike: rate cards with their versions, rating runs
//! and closed periods, and the fleet facts a bill needs (tariff plans, SIMs active in a month).

use std::collections::HashMap;
use std::ops::Deref;

use async_trait::async_trait;
use chrono::{DateTime, Months, NaiveDate, Utc};
use ioto_domain::billing::adjustment::{DataDelta, FeeDelta, PeriodAdjustment};
use ioto_domain::billing::invoice::InvoiceCharge;
use ioto_domain::billing::money::{Currency, Price};
use ioto_domain::billing::rate_card::{
    BillingPeriod, RateCard, RateCardKind, RateCardTerms, RateCardVersion,
};
use ioto_domain::billing::rating::{ActiveSimMonth, BillableSim, RatingRun, RatingTotals, RunStatus};
use ioto_domain::ports::billing::{
    BillingFleet, ClosedPeriod, InvoiceChargeStore, RateCardStore, RatingRunStore, RunQuery,
};
use ioto_domain::{CustomerId, Error, Iccid, Result, Scope, TenantId};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect, Set, Statement,
};
use uuid::Uuid;

use crate::entities::{
    closed_period, invoice_charge, period_adjustment, rate_card, rate_card_version, rating_run,
};
use crate::error::{db, map};
use crate::pool::{commit, SqlStore};

/// The billing adapter. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct SqlBilling(pub(crate) SqlStore);

impl Deref for SqlBilling {
    type Target = SqlStore;

    fn deref(&self) -> &SqlStore {
        &self.0
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("stored {what} does not read back: {e}"))
}

fn card_from(row: rate_card::Model, versions: Vec<rate_card_version::Model>) -> Result<RateCard> {
    let mut vs = versions
        .into_iter()
        .map(|v| {
            let terms: RateCardTerms =
                serde_json::from_value(v.terms).map_err(|e| corrupt("rate card terms", e))?;
            Ok(RateCardVersion {
                id: v.id,
                terms,
                created_at: v.created_at,
                created_by: v.created_by,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    vs.sort_by_key(|v| v.terms.effective_from);
    Ok(RateCard {
        id: row.id,
        tenant_id: TenantId(row.tenant_id),
        kind: RateCardKind::parse(&row.kind)?,
        name: row.name,
        currency: Currency::parse("currency", &row.currency)?,
        billing_period: BillingPeriod::parse(&row.billing_period)?,
        retired_from: row.retired_from,
        created_at: row.created_at,
        versions: vs,
    })
}

fn version_row(card: &RateCard, v: &RateCardVersion) -> Result<rate_card_version::ActiveModel> {
    Ok(rate_card_version::ActiveModel {
        id: Set(v.id),
        rate_card_id: Set(card.id),
        tenant_id: Set(card.tenant_id.0),
        kind: Set(card.kind.as_str().to_owned()),
        effective_from: Set(v.terms.effective_from),
        terms: Set(serde_json::to_value(&v.terms).map_err(|e| Error::Internal(e.to_string()))?),
        created_at: Set(v.created_at),
        created_by: Set(v.created_by.clone()),
    })
}

/// Rows visible in `scope` (the database's policies say the same on Postgres; this holds on
/// SQLite too): a tenant sees its retail rows; the platform sees all.
fn visible<C: ColumnTrait>(scope: Scope, tenant_col: C, kind_col: C) -> sea_orm::Condition {
    match scope {
        Scope::Platform => sea_orm::Condition::all(),
        Scope::Tenant { tenant_id, .. } => sea_orm::Condition::all()
            .add(tenant_col.eq(tenant_id.0))
            .add(kind_col.eq(RateCardKind::Retail.as_str())),
    }
}

#[async_trait]
impl RateCardStore for SqlBilling {
    async fn create_rate_card(&self, card: &RateCard) -> Result<()> {
        let txn = self.begin(Scope::Platform).await?;
        rate_card::ActiveModel {
            id: Set(card.id),
            tenant_id: Set(card.tenant_id.0),
            kind: Set(card.kind.as_str().to_owned()),
            name: Set(card.name.clone()),
            currency: Set(card.currency.code().to_owned()),
            billing_period: Set(card.billing_period.as_str().to_owned()),
            retired_from: Set(card.retired_from),
            created_at: Set(card.created_at),
        }
        .insert(&txn)
        .await
        .map_err(|e| {
            map(
                e,
                &format!(
                    "the tenant already has a {} rate card; add a version to it instead",
                    card.kind.as_str()
                ),
            )
        })?;
        for v in &card.versions {
            version_row(card, v)?.insert(&txn).await.map_err(db)?;
        }
        commit(txn).await
    }

    async fn add_rate_card_version(&self, card: &RateCard, version: &RateCardVersion) -> Result<()> {
        let txn = self.begin(Scope::Platform).await?;
        version_row(card, version)?
            .insert(&txn)
            .await
            .map_err(|e| map(e, "the card already has a version taking effect on that day"))?;
        commit(txn).await
    }

    async fn retire_rate_card(&self, card: &RateCard, from: NaiveDate) -> Result<()> {
        let txn = self.begin(Scope::Platform).await?;
        rate_card::Entity::update_many()
            .col_expr(rate_card::Column::RetiredFrom, Expr::value(from))
            .filter(rate_card::Column::Id.eq(card.id))
            .exec(&txn)
            .await
            .map_err(db)?;
        commit(txn).await
    }

    async fn rate_cards(&self, scope: Scope, tenant: Option<TenantId>) -> Result<Vec<RateCard>> {
        let mut q = rate_card::Entity::find().filter(visible(
            scope,
            rate_card::Column::TenantId,
            rate_card::Column::Kind,
        ));
        if let Some(t) = tenant {
            q = q.filter(rate_card::Column::TenantId.eq(t.0));
        }
        let txn = self.begin(scope).await?;
        let cards = q
            .order_by_asc(rate_card::Column::TenantId)
            .order_by_asc(rate_card::Column::Kind)
            .all(&txn)
            .await
            .map_err(db)?;
        let ids: Vec<Uuid> = cards.iter().map(|c| c.id).collect();
        let mut versions: HashMap<Uuid, Vec<rate_card_version::Model>> = HashMap::new();
        if !ids.is_empty() {
            for v in rate_card_version::Entity::find()
                .filter(rate_card_version::Column::RateCardId.is_in(ids))
                .all(&txn)
                .await
                .map_err(db)?
            {
                versions.entry(v.rate_card_id).or_default().push(v);
            }
        }
        commit(txn).await?;
        cards
            .into_iter()
            .map(|c| {
                let vs = versions.remove(&c.id).unwrap_or_default();
                card_from(c, vs)
            })
            .collect()
    }

    async fn rate_card(&self, scope: Scope, id: Uuid) -> Result<Option<RateCard>> {
        let txn = self.begin(scope).await?;
        let Some(card) = rate_card::Entity::find_by_id(id)
            .filter(visible(
                scope,
                rate_card::Column::TenantId,
                rate_card::Column::Kind,
            ))
            .one(&txn)
            .await
            .map_err(db)?
        else {
            commit(txn).await?;
            return Ok(None);
        };
        let versions = rate_card_version::Entity::find()
            .filter(rate_card_version::Column::RateCardId.eq(id))
            .all(&txn)
            .await
            .map_err(db)?;
        commit(txn).await?;
        card_from(card, versions).map(Some)
    }
}

fn run_from(r: rating_run::Model) -> Result<RatingRun> {
    Ok(RatingRun {
        id: r.id,
        tenant_id: TenantId(r.tenant_id),
        card_id: r.rate_card_id,
        kind: RateCardKind::parse(&r.kind)?,
        period_start: r.period_start,
        period_end: r.period_end,
        status: RunStatus::parse(&r.status).ok_or_else(|| corrupt("run status", &r.status))?,
        started_at: r.started_at,
        finished_at: r.finished_at,
        totals: match r.totals {
            Some(t) => serde_json::from_value(t).map_err(|e| corrupt("run totals", e))?,
            None => RatingTotals::default(),
        },
        error: r.error,
        requested_by: r.requested_by,
    })
}

#[async_trait]
impl RatingRunStore for SqlBilling {
    async fn start_run(&self, run: &RatingRun) -> Result<()> {
        let txn = self.begin(Scope::Platform).await?;
        rating_run::ActiveModel {
            id: Set(run.id),
            tenant_id: Set(run.tenant_id.0),
            rate_card_id: Set(run.card_id),
            kind: Set(run.kind.as_str().to_owned()),
            period_start: Set(run.period_start),
            period_end: Set(run.period_end),
            status: Set(RunStatus::Running.as_str().to_owned()),
            started_at: Set(run.started_at),
            finished_at: Set(None),
            totals: Set(None),
            error: Set(None),
            requested_by: Set(run.requested_by.clone()),
        }
        .insert(&txn)
        .await
        .map_err(db)?;
        commit(txn).await
    }

    async fn complete_run(&self, id: Uuid, totals: &RatingTotals, at: DateTime<Utc>) -> Result<Option<Uuid>> {
        let txn = self.begin(Scope::Platform).await?;
        let mut q = rating_run::Entity::find_by_id(id);
        if self.backend() == DbBackend::Postgres {
            q = q.lock_exclusive();
        }
        let run = q
            .one(&txn)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("rating run", id))?;
        // Serialise runs of the same card and period: lock the card's row.
        if self.backend() == DbBackend::Postgres {
            txn.execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 FROM rate_cards WHERE id = $1 FOR UPDATE",
                [run.rate_card_id.into()],
            ))
            .await
            .map_err(db)?;
        }
        let previous = rating_run::Entity::find()
            .filter(rating_run::Column::RateCardId.eq(run.rate_card_id))
            .filter(rating_run::Column::PeriodStart.eq(run.period_start))
            .filter(rating_run::Column::Status.eq(RunStatus::Current.as_str()))
            .one(&txn)
            .await
            .map_err(db)?;
        if let Some(p) = &previous {
            rating_run::Entity::update_many()
                .col_expr(
                    rating_run::Column::Status,
                    Expr::value(RunStatus::Superseded.as_str()),
                )
                .filter(rating_run::Column::Id.eq(p.id))
                .exec(&txn)
                .await
                .map_err(db)?;
        }
        rating_run::Entity::update_many()
            .col_expr(
                rating_run::Column::Status,
                Expr::value(RunStatus::Current.as_str()),
            )
            .col_expr(rating_run::Column::FinishedAt, Expr::value(at))
            .col_expr(
                rating_run::Column::Totals,
                Expr::value(serde_json::to_value(totals).map_err(|e| Error::Internal(e.to_string()))?),
            )
            .filter(rating_run::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(db)?;
        commit(txn).await?;
        Ok(previous.map(|p| p.id))
    }

    async fn fail_run(&self, id: Uuid, error: &str, at: DateTime<Utc>) -> Result<()> {
        let txn = self.begin(Scope::Platform).await?;
        rating_run::Entity::update_many()
            .col_expr(
                rating_run::Column::Status,
                Expr::value(RunStatus::Failed.as_str()),
            )
            .col_expr(rating_run::Column::FinishedAt, Expr::value(at))
            .col_expr(rating_run::Column::Error, Expr::value(error.to_owned()))
            .filter(rating_run::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(db)?;
        commit(txn).await
    }

    async fn runs(&self, scope: Scope, query: &RunQuery) -> Result<Vec<RatingRun>> {
        let mut q = rating_run::Entity::find().filter(visible(
            scope,
            rating_run::Column::TenantId,
            rating_run::Column::Kind,
        ));
        if let Some(t) = query.tenant {
            q = q.filter(rating_run::Column::TenantId.eq(t.0));
        }
        if let Some(f) = query.from {
            q = q.filter(rating_run::Column::PeriodStart.gte(f));
        }
        if let Some(t) = query.to {
            q = q.filter(rating_run::Column::PeriodStart.lt(t));
        }
        if query.current_only {
            q = q.filter(rating_run::Column::Status.eq(RunStatus::Current.as_str()));
        }
        let txn = self.begin(scope).await?;
        let rows = q
            .order_by_desc(rating_run::Column::PeriodStart)
            .order_by_desc(rating_run::Column::StartedAt)
            .limit(query.limit.max(1))
            .all(&txn)
            .await
            .map_err(db)?;
        commit(txn).await?;
        rows.into_iter().map(run_from).collect()
    }

    async fn close_period(&self, period: &ClosedPeriod) -> Result<()> {
        let txn = self.begin(Scope::Platform).await?;
        let kind = rate_card::Entity::find_by_id(period.card_id)
            .one(&txn)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("rate card", period.card_id))?
            .kind;
        closed_period::ActiveModel {
            rate_card_id: Set(period.card_id),
            period_start: Set(period.period_start),
            tenant_id: Set(period.tenant_id.0),
            kind: Set(kind),
            run_id: Set(period.run_id),
            closed_at: Set(period.closed_at),
            closed_by: Set(period.closed_by.clone()),
        }
        .insert(&txn)
        .await
        .map_err(|e| map(e, "that billing period is closed already"))?;
        commit(txn).await
    }

    async fn closed_periods(&self, scope: Scope, tenant: TenantId) -> Result<Vec<ClosedPeriod>> {
        let txn = self.begin(scope).await?;
        let rows = closed_period::Entity::find()
            .filter(visible(
                scope,
                closed_period::Column::TenantId,
                closed_period::Column::Kind,
            ))
            .filter(closed_period::Column::TenantId.eq(tenant.0))
            .order_by_asc(closed_period::Column::PeriodStart)
            .all(&txn)
            .await
            .map_err(db)?;
        commit(txn).await?;
        Ok(rows
            .into_iter()
            .map(|r| ClosedPeriod {
                card_id: r.rate_card_id,
                tenant_id: TenantId(r.tenant_id),
                period_start: r.period_start,
                run_id: r.run_id,
                closed_at: r.closed_at,
                closed_by: r.closed_by,
            })
            .collect())
    }

    async fn put_adjustment(&self, a: &PeriodAdjustment) -> Result<()> {
        let txn = self.begin(Scope::Platform).await?;
        let closed = closed_period::Entity::find_by_id((a.card_id, a.period_start))
            .one(&txn)
            .await
            .map_err(db)?;
        if closed.is_some() {
            return Err(Error::Conflict(format!(
                "the period starting {} is closed; its invoice is final",
                a.period_start
            )));
        }
        let lines = serde_json::to_value(AdjustmentLines {
            data: a.data.clone(),
            fees: a.fees.clone(),
        })
        .map_err(|e| Error::Internal(e.to_string()))?;
        let row = period_adjustment::ActiveModel {
            rate_card_id: Set(a.card_id),
            period_start: Set(a.period_start),
            adjusted_period_start: Set(a.adjusted_period_start),
            adjusted_period_end: Set(a.adjusted_period_end),
            tenant_id: Set(a.tenant_id.0),
            kind: Set(a.kind.as_str().to_owned()),
            basis_records: Set(i64::try_from(a.basis_records)
                .map_err(|_| Error::Internal("CDR count beyond 64 bits".into()))?),
            lines: Set(lines),
            computed_at: Set(a.computed_at),
        };
        period_adjustment::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([
                    period_adjustment::Column::RateCardId,
                    period_adjustment::Column::PeriodStart,
                    period_adjustment::Column::AdjustedPeriodStart,
                ])
                .update_columns([
                    period_adjustment::Column::AdjustedPeriodEnd,
                    period_adjustment::Column::BasisRecords,
                    period_adjustment::Column::Lines,
                    period_adjustment::Column::ComputedAt,
                ])
                .to_owned(),
            )
            .exec(&txn)
            .await
            .map_err(db)?;
        commit(txn).await
    }

    async fn adjustments(&self, scope: Scope, tenant: TenantId) -> Result<Vec<PeriodAdjustment>> {
        let txn = self.begin(scope).await?;
        let rows = period_adjustment::Entity::find()
            .filter(visible(
                scope,
                period_adjustment::Column::TenantId,
                period_adjustment::Column::Kind,
            ))
            .filter(period_adjustment::Column::TenantId.eq(tenant.0))
            .order_by_asc(period_adjustment::Column::PeriodStart)
            .order_by_asc(period_adjustment::Column::AdjustedPeriodStart)
            .all(&txn)
            .await
            .map_err(db)?;
        commit(txn).await?;
        rows.into_iter()
            .map(|r| {
                let lines: AdjustmentLines =
                    serde_json::from_value(r.lines).map_err(|e| corrupt("adjustment lines", e))?;
                Ok(PeriodAdjustment {
                    card_id: r.rate_card_id,
                    tenant_id: TenantId(r.tenant_id),
                    kind: RateCardKind::parse(&r.kind)?,
                    period_start: r.period_start,
                    adjusted_period_start: r.adjusted_period_start,
                    adjusted_period_end: r.adjusted_period_end,
                    basis_records: r.basis_records.unsigned_abs(),
                    data: lines.data,
                    fees: lines.fees,
                    computed_at: r.computed_at,
                })
            })
            .collect()
    }
}

/// How an adjustment's lines are stored.
#[derive(serde::Serialize, serde::Deserialize)]
struct AdjustmentLines {
    data: Vec<DataDelta>,
    fees: Vec<FeeDelta>,
}

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
