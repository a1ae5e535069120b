//! Forecasts and anomalies on sea-orm, for Postgres and SQLite alike. A forecast is one row per
//! subject, replaced by an upsert; its days are JSON (`{"start", "points": [[expected, low80,
//! high80, low95, high95], …]}` in whole bytes: a month of days in about 1.5 kB; a group's hourly
//! outlook beside them under `"hourly": {"forecast", "today"}`, as the forecast crate serialises
//! them, about 6 kB more). Anomalies are
//! inserted with `ON CONFLICT DO NOTHING` on their unique key (SIM, kind, day, value — `''` for
//! none), so a pass run twice stores each once, and the new ones' notifications are written in
//! the same transaction. The forecast pass of a tenant is claimed with a lease on its
//! `forecast_runs` row (one conditional `UPDATE`). Row-level security keeps tenants apart on
//! Postgres (and sub-customers' users to their own SIMs' anomalies); every scoped read also
//! filters by the scope (SQLite has no row-level security).

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Days, NaiveDate, Utc};
use ioto_domain::billing::money::{Cost, Currency};
use ioto_domain::fleet::query::Cursor;
use ioto_domain::forecast::{
    cursor_key, method_from, severity_from, Anomaly, AnomalyDecision, AnomalyFilter, AnomalyKind,
    AnomalyRecord, AnomalyStatus, DayForecast, Dismissal, Evidence, ForecastQuota, ForecastSubject,
    HourlyOutlook, ProjectedCost, StoredForecast, Unwritten,
};
use ioto_domain::identifiers::Iccid;
use ioto_domain::ports::forecasts::{AnomaliesStored, ForecastStore};
use ioto_domain::{CustomerId, Error, Result, Scope, SimId, TenantId};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    Set,
};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::entities::{anomaly, forecast_run, usage_forecast};
use crate::error::db;
use crate::fleet::SqlFleet;
use crate::notifications::insert_notification;
use crate::pool::commit_or_roll_back;

/// Forecasts written per statement (22 parameters each: well within both engines' limits).
const FORECAST_CHUNK: usize = 500;
/// Anomalies written per statement.
const ANOMALY_CHUNK: usize = 200;
/// SIM ids per `IN (…)` list.
const ID_CHUNK: usize = 1_000;

fn corrupt(table: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("stored {table}: {what}: {e}"))
}

fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unsigned(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|e| corrupt("usage_forecasts", what, e))
}

/// Bytes as stored: whole, and 0 for anything that is not a finite, positive number.
fn whole(v: f64) -> i64 {
    if v.is_finite() && v > 0.0 {
        // `as` saturates past i64::MAX, which no day's usage reaches.
        v.round() as i64
    } else {
        0
    }
}

/// A forecast's days as stored (see the module doc), with its hourly outlook under `hourly`.
fn series_json(days: &[DayForecast], hourly: Option<&HourlyOutlook>) -> Value {
    let mut v = days_json(days);
    if let Some(h) = hourly.cloned().map(HourlyOutlook::finite) {
        v["hourly"] = json!({"forecast": h.forecast, "today": h.today});
    }
    v
}

/// A forecast's hourly outlook from the stored series (`None` where it has none).
fn hourly_from(v: &Value) -> Result<Option<HourlyOutlook>> {
    let Some(h) = v.get("hourly").filter(|h| !h.is_null()) else {
        return Ok(None);
    };
    let bad = |e: serde_json::Error| corrupt("usage_forecasts", "days", e);
    Ok(Some(HourlyOutlook {
        forecast: serde_json::from_value(h["forecast"].clone()).map_err(bad)?,
        today: serde_json::from_value(h["today"].clone()).map_err(bad)?,
    }))
}

/// A forecast's days as stored (see the module doc).
fn days_json(days: &[DayForecast]) -> Value {
    let points: Vec<Value> = days
        .iter()
        .map(|d| {
            json!([
                whole(d.point),
                whole(d.lo80),
                whole(d.hi80),
                whole(d.lo95),
                whole(d.hi95)
            ])
        })
        .collect();
    json!({
        "start": days.first().map(|d| d.date.to_string()),
        "points": points,
    })
}

/// A forecast's days from their stored form.
fn days_from(v: &Value) -> Result<Vec<DayForecast>> {
    let bad = |why: &str| corrupt("usage_forecasts", "days", why);
    let points = v["points"].as_array().ok_or_else(|| bad("no points"))?;
    if points.is_empty() {
        return Ok(Vec::new());
    }
    let start = v["start"]
        .as_str()
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .ok_or_else(|| bad("no start day"))?;
    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let n = |j: usize| {
                p.get(j)
                    .and_then(Value::as_f64)
                    .ok_or_else(|| bad("a day without its five figures"))
            };
            let date = start
                .checked_add_days(Days::new(i as u64))
                .ok_or_else(|| bad("a day out of range"))?;
            Ok(DayForecast {
                date,
                point: n(0)?,
                lo80: n(1)?,
                hi80: n(2)?,
                lo95: n(3)?,
                hi95: n(4)?,
            })
        })
        .collect()
}

/// A forecast's projected cost from its columns: all four set, or none.
fn projected_cost(m: &usage_forecast::Model) -> Result<Option<ProjectedCost>> {
    let (Some(currency), Some(so_far), Some(projected), Some(high)) = (
        m.cost_currency.as_deref(),
        m.cost_so_far.as_deref(),
        m.projected_cost.as_deref(),
        m.projected_cost_high80.as_deref(),
    ) else {
        return Ok(None);
    };
    let cost =
        |what: &str, text: &str| Cost::parse(what, text).map_err(|e| corrupt("usage_forecasts", what, e));
    Ok(Some(ProjectedCost {
        currency: Currency::parse("cost_currency", currency)
            .map_err(|e| corrupt("usage_forecasts", "cost_currency", e))?,
        cost_so_far: cost("cost_so_far", so_far)?,
        projected: cost("projected_cost", projected)?,
        projected_high80: cost("projected_cost_high80", high)?,
    }))
}

impl TryFrom<usage_forecast::Model> for StoredForecast {
    type Error = Error;
    fn try_from(m: usage_forecast::Model) -> Result<Self> {
        let projected_cost = projected_cost(&m)?;
        let quota = match (m.quota_limit_bytes, m.period_end) {
            (Some(limit), Some(period_end)) => Some(ForecastQuota {
                limit_bytes: unsigned(limit, "quota_limit_bytes")?,
                used_bytes: unsigned(m.used_bytes.unwrap_or(0), "used_bytes")?,
                period_end,
                exhaustion_likely: m.exhaustion_likely,
                exhaustion_earliest: m.exhaustion_earliest,
                exhaustion_latest: m.exhaustion_latest,
                projected_period_bytes: unsigned(
                    m.projected_period_bytes.unwrap_or(0),
                    "projected_period_bytes",
                )?,
                projected_period_bytes_hi80: unsigned(
                    m.projected_period_bytes_hi80.unwrap_or(0),
                    "projected_period_bytes_hi80",
                )?,
            }),
            _ => None,
        };
        Ok(StoredForecast {
            tenant_id: TenantId(m.tenant_id),
            subject: ForecastSubject::from_parts(&m.subject_kind, m.subject_id)?,
            computed_at: m.computed_at,
            history_days: u32::try_from(m.history_days)
                .map_err(|e| corrupt("usage_forecasts", "history_days", e))?,
            method: method_from(&m.method)?,
            backtest_mase: m.backtest_mase,
            backtest_wape: m.backtest_wape,
            days: days_from(&m.days)?,
            hourly: hourly_from(&m.days)?,
            quota,
            projected_cost,
        })
    }
}

/// A finite figure for a `double precision` / `REAL` column (SQLite stores NaN as NULL).
fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

/// A forecast as a row to write.
fn forecast_model(f: &StoredForecast) -> usage_forecast::ActiveModel {
    let q = f.quota.as_ref();
    let p = f.projected_cost.as_ref();
    usage_forecast::ActiveModel {
        tenant_id: Set(f.tenant_id.0),
        subject_kind: Set(f.subject.kind().to_owned()),
        subject_id: Set(f.subject.id(f.tenant_id)),
        computed_at: Set(f.computed_at),
        history_days: Set(i32::try_from(f.history_days).unwrap_or(i32::MAX)),
        method: Set(f.method.as_str().to_owned()),
        backtest_mase: Set(finite(f.backtest_mase)),
        backtest_wape: Set(finite(f.backtest_wape)),
        days: Set(series_json(&f.days, f.hourly.as_ref())),
        quota_limit_bytes: Set(q.map(|q| big(q.limit_bytes))),
        used_bytes: Set(q.map(|q| big(q.used_bytes))),
        exhaustion_likely: Set(q.and_then(|q| q.exhaustion_likely)),
        exhaustion_earliest: Set(q.and_then(|q| q.exhaustion_earliest)),
        exhaustion_latest: Set(q.and_then(|q| q.exhaustion_latest)),
        period_end: Set(q.map(|q| q.period_end)),
        projected_period_bytes: Set(q.map(|q| big(q.projected_period_bytes))),
        projected_period_bytes_hi80: Set(q.map(|q| big(q.projected_period_bytes_hi80))),
        cost_currency: Set(p.map(|p| p.currency.code().to_owned())),
        cost_so_far: Set(p.map(|p| p.cost_so_far.to_string())),
        projected_cost: Set(p.map(|p| p.projected.to_string())),
        projected_cost_high80: Set(p.map(|p| p.projected_high80.to_string())),
    }
}

impl TryFrom<anomaly::Model> for AnomalyRecord {
    type Error = Error;
    fn try_from(m: anomaly::Model) -> Result<Self> {
        let kind = AnomalyKind::parse(&m.kind).map_err(|e| corrupt("anomalies", "kind", e))?;
        let evidence: Evidence =
            serde_json::from_value(m.evidence).map_err(|e| corrupt("anomalies", "evidence", e))?;
        Ok(AnomalyRecord {
            id: m.id,
            tenant_id: TenantId(m.tenant_id),
            sim_id: SimId(m.sim_id),
            customer_id: m.customer_id.map(CustomerId),
            iccid: Iccid::parse(&m.iccid).map_err(|e| corrupt("anomalies", "iccid", e))?,
            anomaly: Anomaly {
                kind,
                day: m.day,
                score: m.score,
                severity: severity_from(&m.severity)?,
                sentence: m.sentence,
                evidence,
                value: (!m.value.is_empty()).then_some(m.value),
            },
            status: AnomalyStatus::parse(&m.status)?,
            decided_by: m.decided_by,
            decided_at: m.decided_at,
            comment: m.comment,
            dismissed_until: m.dismissed_until,
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

/// An anomaly as a row to write.
fn anomaly_model(r: &AnomalyRecord) -> Result<anomaly::ActiveModel> {
    let a = &r.anomaly;
    let evidence = serde_json::to_value(&a.evidence)
        .map_err(|e| Error::Internal(format!("an anomaly's evidence: {e}")))?;
    Ok(anomaly::ActiveModel {
        id: Set(r.id),
        tenant_id: Set(r.tenant_id.0),
        sim_id: Set(r.sim_id.0),
        customer_id: Set(r.customer_id.map(|c| c.0)),
        iccid: Set(r.iccid.as_str().to_owned()),
        kind: Set(a.kind.as_str().to_owned()),
        day: Set(a.day),
        score: Set(if a.score.is_finite() { a.score } else { 0.0 }),
        severity: Set(a.severity.as_str().to_owned()),
        sentence: Set(a.sentence.clone()),
        evidence: Set(evidence),
        value: Set(a.value.clone().unwrap_or_default()),
        status: Set(r.status.as_str().to_owned()),
        decided_by: Set(r.decided_by.clone()),
        decided_at: Set(r.decided_at),
        comment: Set(r.comment.clone()),
        dismissed_until: Set(r.dismissed_until),
        created_at: Set(r.created_at),
        updated_at: Set(r.updated_at),
    })
}

/// The anomalies the scope sees: its tenant's and, in a sub-customer's scope, those of that
/// sub-customer's SIMs.
fn anomalies_in(scope: Scope) -> sea_orm::Select<anomaly::Entity> {
    let mut q = anomaly::Entity::find();
    if let Some(t) = scope.tenant_id() {
        q = q.filter(anomaly::Column::TenantId.eq(t.0));
    }
    if let Some(c) = scope.customer_id() {
        q = q.filter(anomaly::Column::CustomerId.eq(c.0));
    }
    q
}

#[async_trait]
impl ForecastStore for SqlFleet {
    async fn put_forecasts(&self, forecasts: &[StoredForecast]) -> Result<()> {
        use usage_forecast::Column as C;
        if forecasts.is_empty() {
            return Ok(());
        }
        let txn = self.begin(Scope::Platform).await?;
        let written: Result<()> = async {
            for chunk in forecasts.chunks(FORECAST_CHUNK) {
                usage_forecast::Entity::insert_many(chunk.iter().map(forecast_model))
                    .on_conflict(
                        OnConflict::columns([C::TenantId, C::SubjectKind, C::SubjectId])
                            .update_columns([
                                C::ComputedAt,
                                C::HistoryDays,
                                C::Method,
                                C::BacktestMase,
                                C::BacktestWape,
                                C::Days,
                                C::QuotaLimitBytes,
                                C::UsedBytes,
                                C::ExhaustionLikely,
                                C::ExhaustionEarliest,
                                C::ExhaustionLatest,
                                C::PeriodEnd,
                                C::ProjectedPeriodBytes,
                                C::ProjectedPeriodBytesHi80,
                                C::CostCurrency,
                                C::CostSoFar,
                                C::ProjectedCost,
                                C::ProjectedCostHigh80,
                            ])
                            .to_owned(),
                    )
                    .exec_without_returning(&txn)
                    .await
                    .map_err(db)?;
            }
            Ok(())
        }
        .await;
        commit_or_roll_back(txn, written).await
    }

    async fn delete_forecasts_before(
        &self,
        tenant: TenantId,
        before: DateTime<Utc>,
        which: Unwritten,
    ) -> Result<u64> {
        use usage_forecast::Column as C;
        let txn = self.begin(Scope::Platform).await?;
        let mut delete = usage_forecast::Entity::delete_many()
            .filter(C::TenantId.eq(tenant.0))
            .filter(C::ComputedAt.lt(before));
        if which == Unwritten::Groups {
            // `ForecastSubject::kind` of a SIM.
            delete = delete.filter(C::SubjectKind.ne("SIM"));
        }
        let deleted = delete.exec(&txn).await.map(|r| r.rows_affected).map_err(db);
        commit_or_roll_back(txn, deleted).await
    }

    async fn forecast(
        &self,
        scope: Scope,
        tenant: TenantId,
        subject: ForecastSubject,
    ) -> Result<Option<StoredForecast>> {
        use usage_forecast::Column as C;
        if scope.tenant_id().is_some_and(|t| t != tenant) {
            return Ok(None);
        }
        let q = usage_forecast::Entity::find()
            .filter(C::TenantId.eq(tenant.0))
            .filter(C::SubjectKind.eq(subject.kind()))
            .filter(C::SubjectId.eq(subject.id(tenant)));
        self.read_one(scope, q).await
    }

    async fn put_anomalies(&self, anomalies: &[AnomalyRecord]) -> Result<AnomaliesStored> {
        if anomalies.is_empty() {
            return Ok(AnomaliesStored::default());
        }
        let models = anomalies.iter().map(anomaly_model).collect::<Result<Vec<_>>>()?;
        let txn = self.begin(Scope::Platform).await?;
        let written: Result<AnomaliesStored> = async {
            let backend = txn.get_database_backend();
            let mut new: HashSet<Uuid> = HashSet::new();
            for chunk in models.chunks(ANOMALY_CHUNK) {
                // One found before (same SIM, kind, day and value) is left out; only the rows
                // written come back.
                let mut insert = anomaly::Entity::insert_many(chunk.iter().cloned())
                    .on_conflict(OnConflict::new().do_nothing().to_owned())
                    .into_query();
                insert.returning_col(anomaly::Column::Id);
                for row in txn.query_all(backend.build(&insert)).await.map_err(db)? {
                    new.insert(row.try_get::<Uuid>("", "id").map_err(db)?);
                }
            }
            let mut stored = AnomaliesStored::default();
            for r in anomalies.iter().filter(|r| new.contains(&r.id)) {
                stored.new.push(r.id);
                if let Some(n) = r.notification() {
                    insert_notification(&txn, &n).await?;
                    stored.notifications.push(n);
                }
            }
            Ok(stored)
        }
        .await;
        commit_or_roll_back(txn, written).await
    }

    async fn anomalies(
        &self,
        scope: Scope,
        tenant: TenantId,
        filter: &AnomalyFilter,
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<AnomalyRecord>> {
        use anomaly::Column as C;
        if scope.tenant_id().is_some_and(|t| t != tenant) {
            return Ok(Vec::new());
        }
        let mut q = anomalies_in(scope).filter(C::TenantId.eq(tenant.0));
        if !filter.kinds.is_empty() {
            q = q.filter(C::Kind.is_in(filter.kinds.iter().map(|k| k.as_str())));
        }
        if filter.min_severity.is_some() {
            q = q.filter(C::Severity.is_in(filter.severities().into_iter().map(|s| s.as_str())));
        }
        if !filter.statuses.is_empty() {
            q = q.filter(C::Status.is_in(filter.statuses.iter().map(|s| s.as_str())));
        }
        if let Some(s) = filter.sim {
            q = q.filter(C::SimId.eq(s.0));
        }
        if let Some(c) = filter.customer {
            q = q.filter(C::CustomerId.eq(c.0));
        }
        if let Some(from) = filter.from {
            q = q.filter(C::Day.gte(from));
        }
        if let Some(to) = filter.to {
            q = q.filter(C::Day.lte(to));
        }
        if let Some(c) = after {
            let (day, score) = cursor_key(c, "after")?;
            q = q.filter(
                Condition::any()
                    .add(C::Day.lt(day))
                    .add(Condition::all().add(C::Day.eq(day)).add(C::Score.lt(score)))
                    .add(
                        Condition::all()
                            .add(C::Day.eq(day))
                            .add(C::Score.eq(score))
                            .add(C::Id.gt(c.id)),
                    ),
            );
        }
        self.read_all(
            scope,
            q.order_by_desc(C::Day)
                .order_by_desc(C::Score)
                .order_by_asc(C::Id)
                .limit(limit),
        )
        .await
    }

    async fn anomaly(&self, scope: Scope, id: Uuid) -> Result<Option<AnomalyRecord>> {
        self.read_one(scope, anomalies_in(scope).filter(anomaly::Column::Id.eq(id)))
            .await
    }

    async fn decide_anomaly(&self, scope: Scope, id: Uuid, d: &AnomalyDecision) -> Result<AnomalyRecord> {
        use anomaly::Column as C;
        let txn = self.begin(scope).await?;
        let written: Result<AnomalyRecord> = async {
            let mut update = anomaly::Entity::update_many()
                .col_expr(C::Status, Expr::value(d.status.as_str()))
                .col_expr(C::DecidedBy, Expr::value(d.by.clone()))
                .col_expr(C::DecidedAt, Expr::value(d.at))
                .col_expr(C::Comment, Expr::value(d.comment.clone()))
                .col_expr(C::DismissedUntil, Expr::value(d.until))
                .col_expr(C::UpdatedAt, Expr::value(d.at))
                .filter(C::Id.eq(id));
            if let Some(t) = scope.tenant_id() {
                update = update.filter(C::TenantId.eq(t.0));
            }
            if let Some(c) = scope.customer_id() {
                update = update.filter(C::CustomerId.eq(c.0));
            }
            if update.exec(&txn).await.map_err(db)?.rows_affected == 0 {
                return Err(Error::not_found("anomaly", id));
            }
            let m = anomalies_in(scope)
                .filter(C::Id.eq(id))
                .one(&txn)
                .await
                .map_err(db)?
                .ok_or_else(|| Error::not_found("anomaly", id))?;
            AnomalyRecord::try_from(m)
        }
        .await;
        commit_or_roll_back(txn, written).await
    }

    async fn dismissals_of(&self, tenant: TenantId, sims: &[SimId]) -> Result<Vec<(SimId, Dismissal)>> {
        use anomaly::Column as C;
        if sims.is_empty() {
            return Ok(Vec::new());
        }
        let txn = self.begin(Scope::Platform).await?;
        let read: Result<Vec<(SimId, Dismissal)>> = async {
            let mut out = Vec::new();
            for chunk in sims.chunks(ID_CHUNK) {
                let rows = anomaly::Entity::find()
                    .filter(C::TenantId.eq(tenant.0))
                    .filter(C::Status.eq(AnomalyStatus::Dismissed.as_str()))
                    .filter(C::SimId.is_in(chunk.iter().map(|s| s.0)))
                    // In one order from pass to pass: the pass digests them.
                    .order_by_asc(C::Id)
                    .all(&txn)
                    .await
                    .map_err(db)?;
                for m in rows {
                    let r = AnomalyRecord::try_from(m)?;
                    if let Some(d) = r.dismissal() {
                        out.push((r.sim_id, d));
                    }
                }
            }
            Ok(out)
        }
        .await;
        commit_or_roll_back(txn, read).await
    }

    async fn claim_forecast_run(
        &self,
        tenant: TenantId,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        fresh_after: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        use forecast_run::Column as C;
        let txn = self.begin(Scope::Platform).await?;
        let written: Result<bool> = async {
            forecast_run::Entity::insert(forecast_run::ActiveModel {
                tenant_id: Set(tenant.0),
                claimed_until: Set(None),
                finished_at: Set(None),
            })
            .on_conflict(OnConflict::column(C::TenantId).do_nothing().to_owned())
            .exec_without_returning(&txn)
            .await
            .map_err(db)?;
            // One conditional write: of two servers claiming at once, the second finds the
            // first's lease (Postgres re-reads the row it waited for; SQLite has one writer).
            // Taking over a lapsed claim (its server died in the pass) voids the last finish, as a
            // pass that failed does: what that pass wrote is not what the last finished one left.
            let mut claim = forecast_run::Entity::update_many()
                .col_expr(C::ClaimedUntil, Expr::value(until))
                .col_expr(
                    C::FinishedAt,
                    Expr::cust("CASE WHEN claimed_until IS NULL THEN finished_at ELSE NULL END"),
                )
                .filter(C::TenantId.eq(tenant.0))
                .filter(
                    Condition::any()
                        .add(C::ClaimedUntil.is_null())
                        .add(C::ClaimedUntil.lt(now)),
                );
            if let Some(fresh) = fresh_after {
                claim = claim.filter(
                    Condition::any()
                        .add(C::FinishedAt.is_null())
                        .add(C::FinishedAt.lt(fresh)),
                );
            }
            Ok(claim.exec(&txn).await.map_err(db)?.rows_affected > 0)
        }
        .await;
        commit_or_roll_back(txn, written).await
    }

    async fn end_forecast_run(&self, tenant: TenantId, finished_at: Option<DateTime<Utc>>) -> Result<()> {
        use forecast_run::Column as C;
        let txn = self.begin(Scope::Platform).await?;
        let end = forecast_run::Entity::update_many()
            .col_expr(C::ClaimedUntil, Expr::value(None::<DateTime<Utc>>))
            .filter(C::TenantId.eq(tenant.0));
        // A pass that did not finish leaves no last pass behind it (see `forecast_run_finished`).
        let end = end.col_expr(C::FinishedAt, Expr::value(finished_at));
        let written = end.exec(&txn).await.map(|_| ()).map_err(db);
        commit_or_roll_back(txn, written).await
    }

    async fn forecast_run_finished(&self, tenant: TenantId) -> Result<Option<DateTime<Utc>>> {
        let txn = self.begin(Scope::Platform).await?;
        let run = forecast_run::Entity::find_by_id(tenant.0)
            .one(&txn)
            .await
            .map_err(db);
        let run = commit_or_roll_back(txn, run).await?;
        Ok(run.and_then(|r| r.finished_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_read_back_in_whole_bytes() {
        let start = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let days: Vec<DayForecast> = (0..3)
            .map(|i| DayForecast {
                date: start + chrono::Duration::days(i),
                point: 1_000.4,
                lo80: 500.0,
                hi80: 1_500.6,
                lo95: 0.0,
                hi95: f64::NAN,
            })
            .collect();
        let back = days_from(&days_json(&days)).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[2].date, start + chrono::Duration::days(2));
        assert_eq!(
            (back[0].point, back[0].hi80, back[0].hi95),
            (1_000.0, 1_501.0, 0.0)
        );
        assert!(days_from(&days_json(&[])).unwrap().is_empty());
    }

    #[test]
    fn an_hourly_outlook_reads_back_beside_the_days_and_none_where_there_is_none() {
        use ioto_domain::forecast::{HourForecast, HourlyForecast, HourlyMethod, TodayProjection};
        let at = DateTime::parse_from_rfc3339("2026-03-01T13:00:00Z")
            .unwrap()
            .to_utc();
        let outlook = HourlyOutlook {
            forecast: HourlyForecast {
                method: HourlyMethod::SeasonalNaiveDay,
                hours: vec![HourForecast {
                    at,
                    point: 10.5,
                    lo80: 5.0,
                    hi80: f64::INFINITY,
                    lo95: 0.0,
                    hi95: 30.0,
                }],
                backtest_mase: Some(0.8),
                backtest_wape: Some(f64::NAN),
            },
            today: Some(TodayProjection {
                day_start: at - chrono::Duration::hours(13),
                hours_so_far: 13,
                so_far: 100.0,
                point: 180.0,
                lo80: 150.0,
                hi80: 210.0,
                lo95: 120.0,
                hi95: 260.0,
                method: HourlyMethod::SeasonalNaiveDay,
                backtest_wape: Some(0.1),
            }),
        };
        let stored = series_json(&[], Some(&outlook));
        let back = hourly_from(&stored).unwrap().unwrap();
        assert_eq!(back, outlook.clone().finite());
        assert_eq!(back.forecast.hours[0].hi80, 0.0);
        assert_eq!(back.forecast.backtest_wape, None);
        assert_eq!(hourly_from(&series_json(&[], None)).unwrap(), None);
        assert!(hourly_from(&json!({"points": [], "hourly": {"forecast": 3}})).is_err());
    }
}
