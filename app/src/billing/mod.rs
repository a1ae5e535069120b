//! Billing use cases: rate cards (platform admins set them; tenants read their retail card),
//! rating runs (scheduled, or on demand for admins), late adjustments, reading rated usage,
//! charges and invoices. One service; each concern in its own file.

mod adjustments;
mod invoices;
mod rate_cards;
mod rated;
mod rating;

pub use self::invoices::NewCharge;
pub use self::rate_cards::NewRateCard;
pub use self::rated::{RatedPeriod, RatedRecords};

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;

use ioto_domain::billing::rate_card::{RateCard, RateCardKind};
use ioto_domain::ports::billing::{
    BillingFleet, ClosedPeriod, InvoiceChargeStore, RateCardStore, RatingEngine, RatingRunStore,
};
use ioto_domain::ports::FleetChanges;
use ioto_domain::{Actor, Error, Permission, Result, Role, Scope, TenantId};

/// The tenant's retail card among `cards` (the tenant's).
fn retail_of(cards: &[RateCard], tenant: TenantId) -> Result<&RateCard> {
    cards
        .iter()
        .find(|c| c.kind == RateCardKind::Retail)
        .ok_or_else(|| Error::not_found("retail rate card of tenant", tenant))
}

/// Whether `card` rates the period `[from, to)`: it is not closed, the card prices a day of it
/// and was not retired from its start.
fn rates(card: &RateCard, closed: &[ClosedPeriod], from: NaiveDate, to: NaiveDate) -> bool {
    !closed
        .iter()
        .any(|c| c.card_id == card.id && c.period_start == from)
        && card.starts().is_some_and(|s| s < to)
        && card.retired_from.is_none_or(|r| r > from)
}

/// Who asked for a run.
#[derive(Debug, Clone)]
pub enum Requester<'a> {
    Scheduler,
    User(&'a Actor),
}

impl Requester<'_> {
    fn name(&self) -> String {
        match self {
            Requester::Scheduler => "scheduler".into(),
            Requester::User(a) => a.subject.clone(),
        }
    }
}

#[derive(Clone)]
pub struct BillingService {
    cards: Arc<dyn RateCardStore>,
    runs: Arc<dyn RatingRunStore>,
    engine: Arc<dyn RatingEngine>,
    fleet: Arc<dyn BillingFleet>,
    charges: Arc<dyn InvoiceChargeStore>,
    settings: Arc<dyn FleetChanges>,
    /// Tenants being rated now: one rating of a tenant at a time on this instance, whoever asks.
    rating: Arc<std::sync::Mutex<std::collections::HashSet<TenantId>>>,
}

/// A tenant's turn to be rated, given back when dropped.
struct RatingTurn {
    rating: Arc<std::sync::Mutex<std::collections::HashSet<TenantId>>>,
    tenant: TenantId,
}

impl Drop for RatingTurn {
    fn drop(&mut self) {
        self.rating
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.tenant);
    }
}

impl BillingService {
    /// The tenant's turn to be rated, or `None` while a rating of it runs.
    fn rating_turn(&self, tenant: TenantId) -> Option<RatingTurn> {
        let fresh = self
            .rating
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(tenant);
        fresh.then(|| RatingTurn {
            rating: Arc::clone(&self.rating),
            tenant,
        })
    }

    pub fn new(
        cards: Arc<dyn RateCardStore>,
        runs: Arc<dyn RatingRunStore>,
        engine: Arc<dyn RatingEngine>,
        fleet: Arc<dyn BillingFleet>,
        charges: Arc<dyn InvoiceChargeStore>,
        settings: Arc<dyn FleetChanges>,
    ) -> Self {
        Self {
            cards,
            runs,
            engine,
            fleet,
            charges,
            settings,
            rating: Arc::default(),
        }
    }

    /// Checks that `actor` may see costs of `tenant`; a customer user only where the tenant shares
    /// costs with its customers.
    pub async fn cost_scope(&self, actor: &Actor, tenant: Option<TenantId>) -> Result<(TenantId, Scope)> {
        actor.require(Permission::ReadCosts, "read costs")?;
        let tenant = actor.target_tenant(tenant)?;
        if actor.role == Role::CustomerUser {
            let s = self.settings.settings(actor.scope(), tenant).await?;
            if !(s.customers_see_costs && s.customers_see_sims) {
                return Err(Error::Forbidden(
                    "your provider does not share usage costs with its customers".into(),
                ));
            }
        }
        Ok((tenant, actor.scope()))
    }
}

/// `e` with its field prefixed (for errors inside a list of versions).
fn prefix(e: Error, prefix: &str) -> Error {
    match e {
        Error::InvalidInput { field, reason } => Error::InvalidInput {
            field: format!("{prefix}{field}"),
            reason,
        },
        other => other,
    }
}
