//! Billing on sea-orm, for Postgres and SQLite alike: rate cards with their versions, rating runs
//! and closed periods, and the fleet facts a bill needs (tariff plans, SIMs active in a month).

mod bill;
mod runs;

use std::collections::HashMap;
use std::ops::Deref;

use async_trait::async_trait;
use chrono::NaiveDate;
use ioto_domain::billing::money::Currency;
use ioto_domain::billing::rate_card::{
    BillingPeriod, RateCard, RateCardKind, RateCardTerms, RateCardVersion,
};
use ioto_domain::ports::billing::RateCardStore;
use ioto_domain::{Error, Result, Scope, TenantId};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use uuid::Uuid;

use crate::entities::{rate_card, rate_card_version};
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
