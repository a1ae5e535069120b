//! Quota and plan advice on sea-orm, for Postgres and SQLite alike: a pass upserts its rows (200
//! a statement; one per subject and kind, which keeps its id) and then deletes the tenant's rows
//! computed before it (subjects no longer advised); lists read by saving
//! rank (whole millionths of the currency, highest first) and id, with keyset cursors. Money is
//! stored as exact decimals in text. Row-level security keeps tenants apart on Postgres (and a
//! sub-customer's users to their own SIMs' advice); every scoped read also filters by the scope,
//! and in a sub-customer's scope leaves pools' advice out.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ioto_domain::advice::{
    cursor_rank, micros_floor, Advice, AdviceAction, AdviceFilter, AdviceKind, AdviceSubject,
};
use ioto_domain::billing::money::{Cost, Currency};
use ioto_domain::fleet::query::Cursor;
use ioto_domain::forecast::Unwritten;
use ioto_domain::identifiers::Iccid;
use ioto_domain::ports::advice::AdviceStore;
use ioto_domain::{CustomerId, Error, Result, Scope, SimId, TenantId};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set, Statement,
};

use crate::entities::advice;
use crate::error::db;
use crate::fleet::SqlFleet;
use crate::pool::commit_or_roll_back;

/// Advice written per statement (22 parameters each: well within both engines' limits).
const ADVICE_CHUNK: usize = 200;

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("stored advice: {what}: {e}"))
}

fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn bytes(v: Option<i64>, what: &str) -> Result<Option<u64>> {
    v.map(|b| u64::try_from(b).map_err(|e| corrupt(what, e)))
        .transpose()
}

fn money(v: Option<&str>, what: &str) -> Result<Option<Cost>> {
    v.map(|c| Cost::parse(what, c).map_err(|e| corrupt(what, e)))
        .transpose()
}

impl TryFrom<advice::Model> for Advice {
    type Error = Error;
    fn try_from(m: advice::Model) -> Result<Self> {
        Ok(Advice {
            id: m.id,
            tenant_id: TenantId(m.tenant_id),
            subject: AdviceSubject::from_parts(&m.subject_kind, m.subject_id)?,
            iccid: m
                .iccid
                .as_deref()
                .map(|i| Iccid::parse(i).map_err(|e| corrupt("iccid", e)))
                .transpose()?,
            customer_id: m.customer_id.map(CustomerId),
            kind: AdviceKind::parse(&m.kind)?,
            action: AdviceAction::parse(&m.action)?,
            current_plan: m.current_plan,
            recommended_plan: m.recommended_plan,
            current_limit_bytes: bytes(m.current_limit_bytes, "current_limit_bytes")?,
            recommended_limit_bytes: bytes(m.recommended_limit_bytes, "recommended_limit_bytes")?,
            current_cost: money(m.current_cost.as_deref(), "current_cost")?,
            recommended_cost: money(m.recommended_cost.as_deref(), "recommended_cost")?,
            saving: money(m.saving.as_deref(), "saving")?,
            currency: m
                .currency
                .as_deref()
                .map(|c| Currency::parse("currency", c).map_err(|e| corrupt("currency", e)))
                .transpose()?,
            sentence: m.sentence,
            plain_sentence: m.plain_sentence,
            window_from: m.window_from,
            window_to: m.window_to,
            computed_at: m.computed_at,
        })
    }
}

/// An advice as a row to write.
fn advice_model(a: &Advice) -> advice::ActiveModel {
    advice::ActiveModel {
        id: Set(a.id),
        tenant_id: Set(a.tenant_id.0),
        subject_kind: Set(a.subject.kind().to_owned()),
        subject_id: Set(a.subject.id()),
        iccid: Set(a.iccid.as_ref().map(|i| i.as_str().to_owned())),
        customer_id: Set(a.customer_id.map(|c| c.0)),
        kind: Set(a.kind.as_str().to_owned()),
        action: Set(a.action.as_str().to_owned()),
        current_plan: Set(a.current_plan.clone()),
        recommended_plan: Set(a.recommended_plan.clone()),
        current_limit_bytes: Set(a.current_limit_bytes.map(big)),
        recommended_limit_bytes: Set(a.recommended_limit_bytes.map(big)),
        current_cost: Set(a.current_cost.map(|c| c.to_string())),
        recommended_cost: Set(a.recommended_cost.map(|c| c.to_string())),
        saving: Set(a.saving.map(|c| c.to_string())),
        saving_rank: Set(a.saving_rank()),
        currency: Set(a.currency.map(|c| c.code().to_owned())),
        sentence: Set(a.sentence.clone()),
        plain_sentence: Set(a.plain_sentence.clone()),
        window_from: Set(a.window_from),
        window_to: Set(a.window_to),
        computed_at: Set(a.computed_at),
    }
}

/// The advice the scope sees: its tenant's and, in a sub-customer's scope, that sub-customer's
/// SIMs' (a pool's advice is for the tenant's own users).
fn advice_in(scope: Scope) -> sea_orm::Select<advice::Entity> {
    let mut q = advice::Entity::find();
    if let Some(t) = scope.tenant_id() {
        q = q.filter(advice::Column::TenantId.eq(t.0));
    }
    if let Some(c) = scope.customer_id() {
        q = q
            .filter(advice::Column::CustomerId.eq(c.0))
            .filter(advice::Column::SubjectKind.eq("SIM"));
    }
    q
}

#[async_trait]
impl AdviceStore for SqlFleet {
    async fn put_advice(&self, advice: &[Advice]) -> Result<()> {
        use advice::Column as C;
        if advice.is_empty() {
            return Ok(());
        }
        let txn = self.begin(Scope::Platform).await?;
        let written: Result<()> = async {
            for chunk in advice.chunks(ADVICE_CHUNK) {
                advice::Entity::insert_many(chunk.iter().map(advice_model))
                    .on_conflict(
                        OnConflict::columns([C::TenantId, C::SubjectKind, C::SubjectId, C::Kind])
                            .update_columns([
                                C::Iccid,
                                C::CustomerId,
                                C::Action,
                                C::CurrentPlan,
                                C::RecommendedPlan,
                                C::CurrentLimitBytes,
                                C::RecommendedLimitBytes,
                                C::CurrentCost,
                                C::RecommendedCost,
                                C::Saving,
                                C::SavingRank,
                                C::Currency,
                                C::Sentence,
                                C::PlainSentence,
                                C::WindowFrom,
                                C::WindowTo,
                                C::ComputedAt,
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

    async fn delete_advice_before(
        &self,
        tenant: TenantId,
        before: DateTime<Utc>,
        which: Unwritten,
    ) -> Result<u64> {
        use advice::Column as C;
        let txn = self.begin(Scope::Platform).await?;
        let mut delete = advice::Entity::delete_many()
            .filter(C::TenantId.eq(tenant.0))
            .filter(C::ComputedAt.lt(before));
        if which == Unwritten::Groups {
            // `AdviceSubject::kind` of a SIM.
            delete = delete.filter(C::SubjectKind.ne("SIM"));
        }
        let deleted = delete.exec(&txn).await.map(|r| r.rows_affected).map_err(db);
        commit_or_roll_back(txn, deleted).await
    }

    async fn delete_sims_advice_before(
        &self,
        tenant: TenantId,
        sims: &[SimId],
        before: DateTime<Utc>,
    ) -> Result<u64> {
        use advice::Column as C;
        let txn = self.begin(Scope::Platform).await?;
        if self.backend() == DbBackend::Postgres {
            // The ids as one parameter joined to the table: as a list (or `= ANY` of it), the
            // generic plan compared every advice row of the tenant with the whole list (a second
            // per 1,000 SIMs among 140,000 rows; 15 s when the list was split per row).
            let ids = crate::fleet::bulk::text_column(sims.iter().map(|s| Some(s.0.to_string())));
            let deleted = txn
                .execute(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "DELETE FROM advice a \
                     USING (SELECT unnest(string_to_array($1, E'\\x1f'))::uuid AS id) s \
                     WHERE a.tenant_id = $2 AND a.subject_kind = 'SIM' AND a.subject_id = s.id \
                     AND a.computed_at < $3",
                    [ids.into(), tenant.0.into(), before.into()],
                ))
                .await
                .map(|r| r.rows_affected())
                .map_err(db);
            return commit_or_roll_back(txn, deleted).await;
        }
        let deleted: Result<u64> = async {
            let mut deleted = 0;
            for chunk in sims.chunks(crate::fleet::ID_CHUNK) {
                deleted += advice::Entity::delete_many()
                    .filter(C::TenantId.eq(tenant.0))
                    .filter(C::SubjectKind.eq("SIM"))
                    .filter(C::SubjectId.is_in(chunk.iter().map(|s| s.0)))
                    .filter(C::ComputedAt.lt(before))
                    .exec(&txn)
                    .await
                    .map_err(db)?
                    .rows_affected;
            }
            Ok(deleted)
        }
        .await;
        commit_or_roll_back(txn, deleted).await
    }

    async fn advice(
        &self,
        scope: Scope,
        tenant: TenantId,
        filter: &AdviceFilter,
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<Advice>> {
        use advice::Column as C;
        if scope.tenant_id().is_some_and(|t| t != tenant) {
            return Ok(Vec::new());
        }
        let mut q = advice_in(scope).filter(C::TenantId.eq(tenant.0));
        if !filter.kinds.is_empty() {
            q = q.filter(C::Kind.is_in(filter.kinds.iter().map(|k| k.as_str())));
        }
        if !filter.actions.is_empty() {
            q = q.filter(C::Action.is_in(filter.actions.iter().map(|a| a.as_str())));
        }
        if let Some(c) = filter.customer {
            q = q.filter(C::CustomerId.eq(c.0));
        }
        if let Some(i) = &filter.iccid {
            q = q.filter(C::Iccid.eq(i.as_str()));
        }
        if let Some(s) = filter.subject {
            q = q
                .filter(C::SubjectKind.eq(s.kind()))
                .filter(C::SubjectId.eq(s.id()));
        }
        if let Some(min) = filter.min_saving {
            q = q
                .filter(C::Saving.is_not_null())
                .filter(C::SavingRank.gte(micros_floor(min)));
        }
        if let Some(c) = after {
            let rank = cursor_rank(c, "after")?;
            q = q.filter(
                Condition::any()
                    .add(C::SavingRank.lt(rank))
                    .add(Condition::all().add(C::SavingRank.eq(rank)).add(C::Id.gt(c.id))),
            );
        }
        self.read_all(
            scope,
            q.order_by_desc(C::SavingRank).order_by_asc(C::Id).limit(limit),
        )
        .await
    }
}
