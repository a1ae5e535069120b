//! Rate cards: platform admins create them, add dated versions of their terms and retire them;
//! tenants read their retail card.

use super::*;
use chrono::{NaiveDate, Utc};
use ioto_domain::billing::money::Currency;
use ioto_domain::billing::rate_card::{
    check_card_name, BillingPeriod, RateCard, RateCardKind, RateCardTerms, RateCardVersion,
};
use ioto_domain::usage::networks::Networks;
use ioto_domain::{Actor, Error, Permission, Result, Scope, TenantId};
use uuid::Uuid;

/// A new card with its first versions (a price history may be entered at once, e.g. when a
/// tenant moves to Ioto; after that, versions are only added for today or later).
#[derive(Debug, Clone)]
pub struct NewRateCard {
    pub tenant_id: TenantId,
    pub kind: RateCardKind,
    pub name: String,
    pub currency: Currency,
    pub billing_period: BillingPeriod,
    pub versions: Vec<RateCardTerms>,
}

impl BillingService {
    /// The tenant's cards the caller may see: the retail card; the supplier card too for
    /// platform admins.
    pub async fn rate_cards(&self, actor: &Actor, tenant: Option<TenantId>) -> Result<Vec<RateCard>> {
        let (tenant, scope) = self.cost_scope(actor, tenant).await?;
        let mut cards = self.cards.rate_cards(scope, Some(tenant)).await?;
        cards.retain(|c| c.kind == RateCardKind::Retail || actor.role.allows(Permission::ReadSupplierCosts));
        Ok(cards)
    }

    pub async fn rate_card(&self, actor: &Actor, id: Uuid) -> Result<RateCard> {
        actor.require(Permission::ReadCosts, "read costs")?;
        let card = self
            .cards
            .rate_card(actor.scope(), id)
            .await?
            .filter(|c| c.kind == RateCardKind::Retail || actor.role.allows(Permission::ReadSupplierCosts))
            .ok_or_else(|| Error::not_found("rate card", id))?;
        self.cost_scope(actor, Some(card.tenant_id)).await?;
        Ok(card)
    }

    pub async fn create_rate_card(&self, actor: &Actor, new: NewRateCard) -> Result<RateCard> {
        actor.require(Permission::ManageRateCards, "manage rate cards")?;
        let name = check_card_name(&new.name)?;
        if new.versions.is_empty() {
            return Err(Error::invalid(
                "versions",
                "a rate card needs at least one version",
            ));
        }
        let networks = Networks::builtin();
        let mut versions = Vec::with_capacity(new.versions.len());
        let now = Utc::now();
        for (i, terms) in new.versions.into_iter().enumerate() {
            terms
                .validate(networks)
                .map_err(|e| prefix(e, &format!("versions[{i}].")))?;
            versions.push(RateCardVersion {
                id: Uuid::new_v4(),
                terms,
                created_at: now,
                created_by: actor.subject.clone(),
            });
        }
        versions.sort_by_key(|v| v.terms.effective_from);
        if let Some(w) = versions
            .windows(2)
            .find(|w| w[0].terms.effective_from == w[1].terms.effective_from)
        {
            return Err(Error::invalid(
                "versions",
                format!(
                    "two versions take effect on {}; one version per day",
                    w[0].terms.effective_from
                ),
            ));
        }
        let card = RateCard {
            id: Uuid::new_v4(),
            tenant_id: new.tenant_id,
            kind: new.kind,
            name,
            currency: new.currency,
            billing_period: new.billing_period,
            retired_from: None,
            created_at: now,
            versions,
        };
        self.cards.create_rate_card(&card).await?;
        Ok(card)
    }

    /// Adds a version taking effect today or later: a day already past is never re-priced.
    pub async fn add_version(&self, actor: &Actor, card_id: Uuid, terms: RateCardTerms) -> Result<RateCard> {
        actor.require(Permission::ManageRateCards, "manage rate cards")?;
        let mut card = self.managed_card(card_id).await?;
        let today = Utc::now().date_naive();
        if terms.effective_from < today {
            return Err(Error::invalid(
                "effectiveFrom",
                format!(
                    "{} is in the past; a new version takes effect today ({today}) or later, so no day already past is re-priced",
                    terms.effective_from
                ),
            ));
        }
        if card.retired_from.is_some_and(|r| terms.effective_from >= r) {
            return Err(Error::invalid(
                "effectiveFrom",
                "the card is retired from before that day",
            ));
        }
        if card
            .versions
            .iter()
            .any(|v| v.terms.effective_from == terms.effective_from)
        {
            return Err(Error::Conflict(format!(
                "the card already has a version taking effect on {}",
                terms.effective_from
            )));
        }
        terms.validate(Networks::builtin())?;
        let version = RateCardVersion {
            id: Uuid::new_v4(),
            terms,
            created_at: Utc::now(),
            created_by: actor.subject.clone(),
        };
        self.cards.add_rate_card_version(&card, &version).await?;
        card.versions.push(version);
        card.versions.sort_by_key(|v| v.terms.effective_from);
        Ok(card)
    }

    /// Stops the card pricing from `from` (today or later).
    pub async fn retire(&self, actor: &Actor, card_id: Uuid, from: NaiveDate) -> Result<RateCard> {
        actor.require(Permission::ManageRateCards, "manage rate cards")?;
        let mut card = self.managed_card(card_id).await?;
        let today = Utc::now().date_naive();
        if from < today {
            return Err(Error::invalid(
                "from",
                format!("{from} is in the past; a card retires today ({today}) or later"),
            ));
        }
        self.cards.retire_rate_card(&card, from).await?;
        card.retired_from = Some(from);
        Ok(card)
    }

    pub(super) async fn managed_card(&self, id: Uuid) -> Result<RateCard> {
        self.cards
            .rate_card(Scope::Platform, id)
            .await?
            .ok_or_else(|| Error::not_found("rate card", id))
    }
}
