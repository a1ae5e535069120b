//! Reading what was rated: a period's usage and access fees by a dimension, the stored rows of a
//! run, and the current run of each of a tenant's cards.

use super::*;
use chrono::{Months, NaiveDate};
use ioto_domain::billing::money::{Cost, Currency};
use ioto_domain::billing::rate_card::{BillingPeriod, RateCard, RateCardKind};
use ioto_domain::billing::rating::RatingRun;
use ioto_domain::ports::billing::{FeeSums, RatedDimension, RatedQuery, RatedSums, RunQuery};
use ioto_domain::{Actor, CustomerId, Error, Permission, Result, Scope, TenantId};
use uuid::Uuid;

/// A rated period as read back: the run, its usage and its access fees by a dimension.
#[derive(Debug, Clone)]
pub struct RatedPeriod {
    pub currency: Currency,
    pub run: RatingRun,
    pub usage: Vec<(String, RatedSums)>,
    /// What the fees are summed by (the usage's dimension, or the tenant where fees lack it).
    pub fees_by: RatedDimension,
    pub fees: Vec<(String, FeeSums)>,
}

/// A run's stored rows, streamed (see [`BillingService::rated_records`]).
pub struct RatedRecords {
    pub currency: Currency,
    pub run: RatingRun,
    pub rows: futures::stream::BoxStream<'static, Result<Vec<ioto_domain::ports::billing::RatedRecord>>>,
}

impl BillingService {
    /// The tenant, its card of `kind` and that card's current run of the period holding `day`,
    /// for a reader of rated data: costs need their permission (a customer user: the tenant's
    /// consent), supplier costs platform rights. `None` without a card or a rating.
    pub(super) async fn current_rating(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        kind: RateCardKind,
        day: NaiveDate,
    ) -> Result<Option<(TenantId, RateCard, RatingRun)>> {
        let (tenant, scope) = self.cost_scope(actor, tenant).await?;
        if kind == RateCardKind::Supplier {
            actor.require(Permission::ReadSupplierCosts, "read supplier costs")?;
        }
        let Some(card) = self
            .cards
            .rate_cards(scope, Some(tenant))
            .await?
            .into_iter()
            .find(|c| c.kind == kind)
        else {
            return Ok(None);
        };
        let (from, _) = card.billing_period.period_of(day);
        Ok(self
            .current_run(scope, &card, from)
            .await?
            .map(|run| (tenant, card, run)))
    }

    /// The current rating of the period holding `day` for the tenant's card of `kind`, summed by
    /// `by`, with the access fees (summed by `by` where fees have that dimension, else in one
    /// row). A customer user sees its own sub-customer's rows only; supplier costs need
    /// platform rights. `None` when the period has not been rated.
    pub async fn rated_usage(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        kind: RateCardKind,
        day: NaiveDate,
        by: RatedDimension,
    ) -> Result<Option<RatedPeriod>> {
        let Some((tenant, card, run)) = self.current_rating(actor, tenant, kind, day).await? else {
            return Ok(None);
        };
        let query = RatedQuery {
            tenant,
            runs: vec![run.id],
            customer: actor.customer_id,
            by,
        };
        let usage = self.engine.rated_usage(&query).await?;
        let fee_query = RatedQuery {
            by: match by {
                RatedDimension::Sim
                | RatedDimension::Customer
                | RatedDimension::Month
                | RatedDimension::TariffPlan => by,
                _ => RatedDimension::Tenant,
            },
            ..query
        };
        let fees = self.engine.rated_fees(&fee_query).await?;
        Ok(Some(RatedPeriod {
            currency: card.currency,
            run,
            usage,
            fees_by: fee_query.by,
            fees,
        }))
    }

    /// The stored rows of the current rating of the period holding `day` (SIM × day × network),
    /// streamed in batches of `batch`, with the run and the card's currency; access rules as
    /// [`Self::rated_usage`]. `None` when the period has not been rated.
    pub async fn rated_records(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        kind: RateCardKind,
        day: NaiveDate,
        batch: usize,
    ) -> Result<Option<RatedRecords>> {
        let Some((tenant, card, run)) = self.current_rating(actor, tenant, kind, day).await? else {
            return Ok(None);
        };
        let rows = self
            .engine
            .rated_records(tenant, run.id, actor.customer_id, batch);
        Ok(Some(RatedRecords {
            currency: card.currency,
            run,
            rows,
        }))
    }

    /// The access fees `runs` charged (one sub-customer's SIMs when `customer` is named).
    pub async fn access_fees(
        &self,
        tenant: TenantId,
        runs: Vec<Uuid>,
        customer: Option<CustomerId>,
    ) -> Result<Cost> {
        let sums = self
            .engine
            .rated_fees(&RatedQuery {
                tenant,
                runs,
                customer,
                by: RatedDimension::Tenant,
            })
            .await?;
        Ok(sums.into_iter().map(|(_, s)| s.fees).sum())
    }

    /// The retail card's currency and the current runs of its periods overlapping the days
    /// `[from, to)`; `None` when the tenant has no retail card.
    pub async fn current_retail_runs(
        &self,
        tenant: TenantId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Option<(Currency, Vec<Uuid>)>> {
        Ok(self
            .current_retail_rated(tenant, from, to)
            .await?
            .map(|(cur, runs)| (cur, runs.into_iter().map(|r| r.id).collect())))
    }

    /// The retail card's currency and the current runs (with their periods) of its periods
    /// overlapping the days `[from, to)`; `None` when the tenant has no retail card.
    pub async fn current_retail_rated(
        &self,
        tenant: TenantId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Option<(Currency, Vec<RatingRun>)>> {
        let card = match self.retail_card(tenant).await {
            Ok(c) => c,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        // Periods are at most a year long: one starting a year before `from` may still overlap.
        let runs = self
            .runs
            .runs(
                Scope::Platform,
                &RunQuery {
                    tenant: Some(tenant),
                    from: from.checked_sub_months(Months::new(12)),
                    to: Some(to),
                    current_only: true,
                    limit: 1_000,
                },
            )
            .await?;
        let runs = runs
            .into_iter()
            .filter(|r| r.card_id == card.id && r.period_end > from && r.period_start < to)
            .collect();
        Ok(Some((card.currency, runs)))
    }

    /// The billing period of the tenant's retail card, if it has one.
    pub async fn retail_billing_period(&self, tenant: TenantId) -> Result<Option<BillingPeriod>> {
        match self.retail_card(tenant).await {
            Ok(c) => Ok(Some(c.billing_period)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The current run of `card` for the period starting `from`, if it was rated.
    pub(super) async fn current_run(
        &self,
        scope: Scope,
        card: &RateCard,
        from: NaiveDate,
    ) -> Result<Option<RatingRun>> {
        Ok(self
            .runs
            .runs(
                scope,
                &RunQuery {
                    tenant: Some(card.tenant_id),
                    from: Some(from),
                    to: from.succ_opt(),
                    current_only: true,
                    limit: 10,
                },
            )
            .await?
            .into_iter()
            .find(|r| r.card_id == card.id))
    }

    pub(super) async fn retail_card(&self, tenant: TenantId) -> Result<RateCard> {
        let cards = self.cards.rate_cards(Scope::Platform, Some(tenant)).await?;
        retail_of(&cards, tenant).cloned()
    }

    pub(super) async fn is_closed(&self, card: &RateCard, period_start: NaiveDate) -> Result<bool> {
        Ok(self
            .runs
            .closed_periods(Scope::Platform, card.tenant_id)
            .await?
            .iter()
            .any(|c| c.card_id == card.id && c.period_start == period_start))
    }
}
