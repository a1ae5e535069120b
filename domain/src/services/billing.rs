//! Billing use cases: rate cards (platform admins set them; tenants read their retail card) and
//! rating runs (scheduled, or on demand for admins).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Months, NaiveDate, Utc};
use uuid::Uuid;

use crate::billing::adjustment::{delta, PeriodAdjustment};
use crate::billing::invoice::{invoice_lines, InvoiceCharge, TenantInvoice};
use crate::billing::money::{Cost, Currency, Price};
use crate::billing::rate_card::{
    check_card_name, BillingPeriod, RateCard, RateCardKind, RateCardTerms, RateCardVersion,
};
use crate::billing::rating::{RatingJob, RatingRun, RatingTotals, RunStatus};
use crate::ports::billing::{
    BillingFleet, ClosedPeriod, FeeSums, InvoiceChargeStore, RateCardStore, RatedDimension, RatedQuery,
    RatedSums, RatingEngine, RatingRunStore, RunQuery,
};
use crate::ports::FleetChanges;
use crate::usage::networks::Networks;
use crate::{Actor, CustomerId, Error, Permission, Result, Role, Scope, TenantId};

/// How many periods before the one holding yesterday the scheduler checks for late CDRs.
const LATE_PERIODS: usize = 12;

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
    pub rows: futures::stream::BoxStream<'static, Result<Vec<crate::ports::billing::RatedRecord>>>,
}

/// A charge to add to the tenant's period holding `day`.
#[derive(Debug, Clone)]
pub struct NewCharge<'a> {
    pub tenant: TenantId,
    pub day: NaiveDate,
    pub description: &'a str,
    pub quantity: u64,
    pub unit_price: Price,
    pub credit: bool,
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

    async fn managed_card(&self, id: Uuid) -> Result<RateCard> {
        self.cards
            .rate_card(Scope::Platform, id)
            .await?
            .ok_or_else(|| Error::not_found("rate card", id))
    }

    /// Rates the billing period holding `day` for every card of `tenant`; a closed period is not
    /// rated again. Returns the runs made.
    pub async fn rate_period(
        &self,
        who: Requester<'_>,
        tenant: TenantId,
        day: NaiveDate,
    ) -> Result<Vec<RatingRun>> {
        if let Requester::User(actor) = &who {
            actor.require(Permission::RunRating, "start a rating run")?;
            actor.target_tenant(Some(tenant))?;
        }
        // A run rates every card of the tenant over all its usage: asked again while one runs,
        // it would only pile up the same work.
        let _turn = self.rating_turn(tenant).ok_or_else(|| {
            Error::Conflict(
                "a rating of this tenant is running; wait for it to finish (ratingRuns lists it)".into(),
            )
        })?;
        self.rate_periods_of(&who, tenant, day, &mut Vec::new()).await
    }

    async fn run(
        &self,
        who: &Requester<'_>,
        card: RateCard,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<RatingRun> {
        let tenant = card.tenant_id;
        let mut run = RatingRun {
            id: Uuid::new_v4(),
            tenant_id: tenant,
            card_id: card.id,
            kind: card.kind,
            period_start: from,
            period_end: to,
            status: RunStatus::Running,
            started_at: Utc::now(),
            finished_at: None,
            totals: RatingTotals::default(),
            error: None,
            requested_by: who.name(),
        };
        self.runs.start_run(&run).await?;
        let job = self.job(card, run.id, from, to).await?;
        match self.engine.rate(&job).await {
            Ok(totals) => {
                let at = Utc::now();
                let superseded = self.runs.complete_run(run.id, &totals, at).await?;
                if let Some(old) = superseded {
                    // Rows of the replaced run are no longer read; removing them is tidying.
                    if let Err(e) = self.engine.discard_runs(tenant, &[old]).await {
                        tracing::warn!(run = %old, error = %e, "could not remove the rows of a superseded rating run");
                    }
                }
                run.status = RunStatus::Current;
                run.finished_at = Some(at);
                run.totals = totals;
                Ok(run)
            }
            Err(e) => {
                let at = Utc::now();
                self.runs.fail_run(run.id, &e.to_string(), at).await?;
                // A failed run is never read; what it wrote before failing is tidied away.
                if let Err(d) = self.engine.discard_runs(tenant, &[run.id]).await {
                    tracing::warn!(run = %run.id, error = %d, "could not remove the rows of a failed rating run");
                }
                Err(e)
            }
        }
    }

    /// The work of rating `card` over `[from, to)` into `run_id`.
    async fn job(&self, card: RateCard, run_id: Uuid, from: NaiveDate, to: NaiveDate) -> Result<RatingJob> {
        let tenant = card.tenant_id;
        // Access fees of the months that have begun (a month ahead is charged once it starts).
        let mut active = Vec::new();
        let mut month = from;
        let today = Utc::now().date_naive();
        while month < to && month <= today {
            active.extend(self.fleet.active_sims(tenant, month).await?);
            month = month + Months::new(1);
        }
        Ok(RatingJob {
            run_id,
            tenant_id: tenant,
            from,
            to,
            sims: self.fleet.billable_sims(tenant).await?,
            active,
            card,
        })
    }

    /// Books the late usage of the card's closed periods before `period_start` into the
    /// period starting `period_start` (open): see [`crate::billing::adjustment`]. A closed period
    /// is rated again only when its CDR count differs from the one its last rating saw.
    async fn book_adjustments(
        &self,
        card: &RateCard,
        period_start: NaiveDate,
        closed: &[ClosedPeriod],
    ) -> Result<()> {
        let tenant = card.tenant_id;
        let closed: Vec<&ClosedPeriod> = closed
            .iter()
            .filter(|c| c.card_id == card.id && c.period_start < period_start)
            .collect();
        if closed.is_empty() {
            return Ok(());
        }
        let booked: Vec<PeriodAdjustment> = self
            .runs
            .adjustments(Scope::Platform, tenant)
            .await?
            .into_iter()
            .filter(|a| a.card_id == card.id)
            .collect();
        for c in closed {
            let (from, to) = card.billing_period.period_of(c.period_start);
            let count = self.engine.cdr_count(tenant, from, to).await?;
            let for_c: Vec<&PeriodAdjustment> = booked
                .iter()
                .filter(|a| a.adjusted_period_start == from)
                .collect();
            let basis = match for_c.iter().max_by_key(|a| a.computed_at) {
                Some(a) => a.basis_records,
                None => {
                    let t = self.closed_run(tenant, c).await?.totals;
                    t.records + t.unpriced_records
                }
            };
            if count == basis {
                continue;
            }
            let scratch = Uuid::new_v4();
            let job = self.job(card.clone(), scratch, from, to).await?;
            let rerated = async {
                self.engine.rate(&job).await?;
                Ok::<_, Error>((
                    self.engine.priced_usage(tenant, scratch).await?,
                    self.engine.fee_groups(tenant, scratch).await?,
                ))
            }
            .await;
            if let Err(e) = self.engine.discard_runs(tenant, &[scratch]).await {
                tracing::warn!(run = %scratch, error = %e, "could not remove the rows of a re-rating of a closed period");
            }
            let (usage, fees) = rerated?;
            let invoiced_usage = self.engine.priced_usage(tenant, c.run_id).await?;
            let invoiced_fees = self.engine.fee_groups(tenant, c.run_id).await?;
            let elsewhere: Vec<&PeriodAdjustment> = for_c
                .iter()
                .copied()
                .filter(|a| a.period_start != period_start)
                .collect();
            let (data, fees) = delta(
                card,
                (&usage, &fees),
                (&invoiced_usage, &invoiced_fees),
                &elsewhere,
            )?;
            let adjustment = PeriodAdjustment {
                card_id: card.id,
                tenant_id: tenant,
                kind: card.kind,
                period_start,
                adjusted_period_start: from,
                adjusted_period_end: to,
                basis_records: count,
                data,
                fees,
                computed_at: Utc::now(),
            };
            self.runs.put_adjustment(&adjustment).await?;
            tracing::info!(
                tenant = %tenant,
                card = %card.id,
                adjusted = %from,
                into = %period_start,
                amount = %adjustment.total(),
                "late usage of a closed period booked as an adjustment"
            );
        }
        Ok(())
    }

    /// The run a closed period was invoiced from.
    async fn closed_run(&self, tenant: TenantId, c: &ClosedPeriod) -> Result<RatingRun> {
        self.runs
            .runs(
                Scope::Platform,
                &RunQuery {
                    tenant: Some(tenant),
                    from: Some(c.period_start),
                    to: c.period_start.succ_opt(),
                    current_only: false,
                    limit: 1_000,
                },
            )
            .await?
            .into_iter()
            .find(|r| r.id == c.run_id)
            .ok_or_else(|| Error::Internal(format!("the closed run {} is not recorded", c.run_id)))
    }

    /// The scheduler's pass: for every tenant with a card, rates the period holding `today` and,
    /// on a period's first day, the period that just ended (its last day's CDRs arrive late);
    /// then rates again the earlier periods that are not closed and received CDRs since their
    /// rating (see [`Self::rate_late_periods`]). One tenant's failure is logged and does not stop
    /// the others; the first error is returned after all were tried.
    pub async fn rate_open_periods(&self, today: NaiveDate) -> Result<Vec<RatingRun>> {
        // Every card, by tenant (in the tenants' id order, each tenant's in the store's order).
        let mut by_tenant: std::collections::BTreeMap<Uuid, Vec<RateCard>> = Default::default();
        for card in self.cards.rate_cards(Scope::Platform, None).await? {
            by_tenant.entry(card.tenant_id.0).or_default().push(card);
        }
        let yesterday = today.pred_opt().unwrap_or(today);
        let days = [today, yesterday];
        let mut runs = Vec::new();
        let mut first_error = None;
        for (tenant, cards) in by_tenant {
            let tenant = TenantId(tenant);
            // Rated by someone else right now: the next pass takes it.
            let Some(_turn) = self.rating_turn(tenant) else {
                tracing::info!(tenant = %tenant, "a rating of the tenant is running; rated in the next pass");
                continue;
            };
            let closed = match self.runs.closed_periods(Scope::Platform, tenant).await {
                Ok(closed) => closed,
                Err(e) => {
                    tracing::warn!(tenant = %tenant, error = %e, "rating a tenant failed");
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            let mut periods_done = Vec::new();
            for day in &days {
                match self
                    .rate_cards_periods(&Requester::Scheduler, &cards, &closed, *day, &mut periods_done)
                    .await
                {
                    Ok(done) => runs.extend(done),
                    Err(e) => {
                        tracing::warn!(tenant = %tenant, error = %e, "rating a tenant failed");
                        first_error.get_or_insert(e);
                    }
                }
            }
            if let Err(e) = self
                .rate_late_periods(tenant, &cards, &closed, yesterday, &mut runs)
                .await
            {
                tracing::warn!(tenant = %tenant, error = %e, "rating late CDRs of a tenant failed");
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) if runs.is_empty() => Err(e),
            _ => Ok(runs),
        }
    }

    /// Rates again each card's periods before the one holding `day` that are not closed and
    /// whose CDR count differs from what their current run rated (a period never rated counts
    /// as changed when it has CDRs): CDRs that arrived late. Looks back at most
    /// [`LATE_PERIODS`] periods and not before the card's first version; an unchanged period
    /// costs a count query, shared by cards with the same periods. The runs made are added to
    /// `runs`; a period's failure does not stop the others, the first error is returned.
    async fn rate_late_periods(
        &self,
        tenant: TenantId,
        cards: &[RateCard],
        closed: &[ClosedPeriod],
        day: NaiveDate,
        runs: &mut Vec<RatingRun>,
    ) -> Result<()> {
        let mut counts: HashMap<(NaiveDate, NaiveDate), u64> = HashMap::new();
        let mut first_error = None;
        for card in cards {
            let mut periods = Vec::new();
            let mut next = card.billing_period.period_of(day).0;
            while periods.len() < LATE_PERIODS {
                let Some(last_day) = next.pred_opt() else { break };
                let (from, to) = card.billing_period.period_of(last_day);
                if card.starts().is_none_or(|s| s >= to) {
                    break;
                }
                next = from;
                periods.push((from, to));
            }
            periods.retain(|&(from, to)| rates(card, closed, from, to));
            let (Some(&(oldest, _)), Some(&(_, end))) = (periods.last(), periods.first()) else {
                continue;
            };
            let query = RunQuery {
                tenant: Some(tenant),
                from: Some(oldest),
                to: Some(end),
                current_only: true,
                limit: 1_000,
            };
            let current = match self.runs.runs(Scope::Platform, &query).await {
                Ok(runs) => runs,
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            for (from, to) in periods {
                let count = match counts.get(&(from, to)) {
                    Some(&n) => n,
                    None => match self.engine.cdr_count(tenant, from, to).await {
                        Ok(n) => {
                            counts.insert((from, to), n);
                            n
                        }
                        Err(e) => {
                            first_error.get_or_insert(e);
                            continue;
                        }
                    },
                };
                let rated = current
                    .iter()
                    .find(|r| r.card_id == card.id && r.period_start == from)
                    .map(|r| r.totals.records + r.totals.unpriced_records);
                if rated.unwrap_or(0) == count {
                    continue;
                }
                match self
                    .rate_card_period(&Requester::Scheduler, card, from, to, closed)
                    .await
                {
                    Ok(run) => runs.push(run),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Rates the periods holding `day` that `done` does not list yet (closed periods and periods
    /// a card does not price are skipped).
    async fn rate_periods_of(
        &self,
        who: &Requester<'_>,
        tenant: TenantId,
        day: NaiveDate,
        done: &mut Vec<(Uuid, NaiveDate)>,
    ) -> Result<Vec<RatingRun>> {
        let cards = self.cards.rate_cards(Scope::Platform, Some(tenant)).await?;
        let closed = self.runs.closed_periods(Scope::Platform, tenant).await?;
        self.rate_cards_periods(who, &cards, &closed, day, done).await
    }

    /// Rates the periods of `cards` (one tenant's, with its `closed` periods) holding `day` that
    /// `done` does not list yet.
    async fn rate_cards_periods(
        &self,
        who: &Requester<'_>,
        cards: &[RateCard],
        closed: &[ClosedPeriod],
        day: NaiveDate,
        done: &mut Vec<(Uuid, NaiveDate)>,
    ) -> Result<Vec<RatingRun>> {
        let mut runs = Vec::new();
        for card in cards {
            let (from, to) = card.billing_period.period_of(day);
            if done.contains(&(card.id, from)) || !rates(card, closed, from, to) {
                continue;
            }
            done.push((card.id, from));
            runs.push(self.rate_card_period(who, card, from, to, closed).await?);
        }
        Ok(runs)
    }

    /// Rates `card` over `[from, to)`, then books the late usage of its closed periods before
    /// it into it.
    async fn rate_card_period(
        &self,
        who: &Requester<'_>,
        card: &RateCard,
        from: NaiveDate,
        to: NaiveDate,
        closed: &[ClosedPeriod],
    ) -> Result<RatingRun> {
        let run = self.run(who, card.clone(), from, to).await?;
        self.book_adjustments(card, from, closed).await?;
        Ok(run)
    }

    /// Runs visible to the caller, newest first.
    pub async fn runs(&self, actor: &Actor, tenant: Option<TenantId>, limit: u64) -> Result<Vec<RatingRun>> {
        let (tenant, scope) = self.cost_scope(actor, tenant).await?;
        let mut runs = self
            .runs
            .runs(
                scope,
                &RunQuery {
                    tenant: Some(tenant),
                    limit: limit.clamp(1, 500),
                    ..RunQuery::default()
                },
            )
            .await?;
        runs.retain(|r| r.kind == RateCardKind::Retail || actor.role.allows(Permission::ReadSupplierCosts));
        Ok(runs)
    }

    /// The tenant, its card of `kind` and that card's current run of the period holding `day`,
    /// for a reader of rated data: costs need their permission (a customer user: the tenant's
    /// consent), supplier costs platform rights. `None` without a card or a rating.
    async fn current_rating(
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

    /// PLATFORM_ADMIN: adds a charge (or credit) to the tenant's period holding `day`.
    pub async fn add_charge(&self, actor: &Actor, new: NewCharge<'_>) -> Result<InvoiceCharge> {
        let NewCharge {
            tenant,
            day,
            description,
            quantity,
            unit_price,
            credit,
        } = new;
        actor.require(Permission::ManageRateCards, "add invoice charges")?;
        let card = self.retail_card(tenant).await?;
        let (period_start, _) = card.billing_period.period_of(day);
        if self.is_closed(&card, period_start).await? {
            return Err(Error::Conflict(format!(
                "the period starting {period_start} is closed; add the charge to the next one"
            )));
        }
        if quantity == 0 || quantity > 1_000_000_000 {
            return Err(Error::invalid("quantity", "must be between 1 and 1,000,000,000"));
        }
        let charge = InvoiceCharge {
            id: Uuid::new_v4(),
            tenant_id: tenant,
            period_start,
            description: InvoiceCharge::check_description(description)?,
            quantity,
            unit_price,
            credit,
            created_at: Utc::now(),
            created_by: actor.subject.clone(),
        };
        self.charges.add_charge(&charge).await?;
        Ok(charge)
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
        let ids = runs
            .into_iter()
            .filter(|r| r.card_id == card.id && r.period_end > from && r.period_start < to)
            .map(|r| r.id)
            .collect();
        Ok(Some((card.currency, ids)))
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
    async fn current_run(&self, scope: Scope, card: &RateCard, from: NaiveDate) -> Result<Option<RatingRun>> {
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

    async fn retail_card(&self, tenant: TenantId) -> Result<RateCard> {
        let cards = self.cards.rate_cards(Scope::Platform, Some(tenant)).await?;
        retail_of(&cards, tenant).cloned()
    }

    async fn is_closed(&self, card: &RateCard, period_start: NaiveDate) -> Result<bool> {
        Ok(self
            .runs
            .closed_periods(Scope::Platform, card.tenant_id)
            .await?
            .iter()
            .any(|c| c.card_id == card.id && c.period_start == period_start))
    }

    /// PLATFORM_ADMIN: the tenant's invoice data for the period holding `day`, from the current
    /// rating of its retail card (or, for a closed period, the run that was closed). `None`
    /// when the period has not been rated.
    pub async fn tenant_invoice(
        &self,
        actor: &Actor,
        tenant: TenantId,
        day: NaiveDate,
    ) -> Result<Option<TenantInvoice>> {
        actor.require(Permission::ManageRateCards, "read tenant invoices")?;
        let cards = self.cards.rate_cards(Scope::Platform, Some(tenant)).await?;
        let card = retail_of(&cards, tenant)?;
        let (from, to) = card.billing_period.period_of(day);
        let all_closed = self.runs.closed_periods(Scope::Platform, tenant).await?;
        let closed = all_closed
            .iter()
            .find(|c| c.card_id == card.id && c.period_start == from);
        let run = match closed {
            Some(c) => Some(c.run_id),
            None => self.current_run(Scope::Platform, card, from).await?.map(|r| r.id),
        };
        let Some(run) = run else { return Ok(None) };
        let usage = self.engine.priced_usage(tenant, run).await?;
        let fees = self.engine.fee_groups(tenant, run).await?;
        let charges = self.charges.charges(tenant, from).await?;
        let adjustments: Vec<PeriodAdjustment> = self
            .runs
            .adjustments(Scope::Platform, tenant)
            .await?
            .into_iter()
            .filter(|a| a.card_id == card.id && a.period_start == from)
            .collect();
        let lines = invoice_lines(card, &usage, &fees, &adjustments, &charges)?;
        let total = lines.iter().map(|l| l.amount).sum();
        let supplier_cost = if actor.role.allows(Permission::ReadSupplierCosts) {
            self.supplier_cost(&cards, &all_closed, card, from, to).await?
        } else {
            None
        };
        Ok(Some(TenantInvoice {
            tenant_id: tenant,
            currency: card.currency,
            period_start: from,
            period_end: to,
            run_id: run,
            is_final: closed.is_some(),
            lines,
            total,
            supplier_cost,
        }))
    }

    /// The tenant's supplier cost of `[from, to)`, from the tenant's `cards` and `closed`
    /// periods: the data cost and access fees of the supplier card's runs of the periods that
    /// tile it (the invoiced run of a closed period, else the current one). `None` without such
    /// a card in `retail`'s currency, when its periods do not tile `[from, to)`, or while one of
    /// them is not rated.
    async fn supplier_cost(
        &self,
        cards: &[RateCard],
        closed: &[ClosedPeriod],
        retail: &RateCard,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Option<Cost>> {
        let tenant = retail.tenant_id;
        let Some(card) = cards
            .iter()
            .find(|c| c.kind == RateCardKind::Supplier && c.currency == retail.currency)
        else {
            return Ok(None);
        };
        let mut cost = Cost::default();
        let mut start = from;
        while start < to {
            let (p_from, p_to) = card.billing_period.period_of(start);
            if p_from != start || p_to > to {
                return Ok(None);
            }
            let run = match closed
                .iter()
                .find(|c| c.card_id == card.id && c.period_start == p_from)
            {
                Some(c) => Some(self.closed_run(tenant, c).await?),
                None => self.current_run(Scope::Platform, card, p_from).await?,
            };
            let Some(run) = run else { return Ok(None) };
            cost = cost + run.totals.usage_cost + run.totals.access_fees;
            start = p_to;
        }
        Ok(Some(cost))
    }

    /// Makes a rated period final: its current run is what gets invoiced.
    pub async fn close_period(
        &self,
        actor: &Actor,
        card_id: Uuid,
        period_start: NaiveDate,
    ) -> Result<ClosedPeriod> {
        actor.require(Permission::ManageRateCards, "close billing periods")?;
        let card = self.managed_card(card_id).await?;
        let (from, _) = card.billing_period.period_of(period_start);
        if from != period_start {
            return Err(Error::invalid(
                "periodStart",
                format!(
                    "{period_start} does not start a {} period; that period starts {from}",
                    card.billing_period.as_str()
                ),
            ));
        }
        let current = self
            .current_run(Scope::Platform, &card, from)
            .await?
            .ok_or_else(|| {
                Error::Conflict(format!(
                    "the period starting {from} has not been rated; rate it first"
                ))
            })?;
        let closed = ClosedPeriod {
            card_id: card.id,
            tenant_id: card.tenant_id,
            period_start: from,
            run_id: current.id,
            closed_at: Utc::now(),
            closed_by: actor.subject.clone(),
        };
        self.runs.close_period(&closed).await?;
        Ok(closed)
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
