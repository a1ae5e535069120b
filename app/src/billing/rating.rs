//! Rating runs: a period priced by a card, on demand (admins) or by the scheduler, which rates
//! the open periods and re-rates the recent closed ones that late CDRs changed.

use super::*;
use chrono::{Months, NaiveDate, Utc};
use ioto_domain::billing::rate_card::{RateCard, RateCardKind};
use ioto_domain::billing::rating::{RatingJob, RatingRun, RatingTotals, RunStatus};
use ioto_domain::ports::billing::{ClosedPeriod, RunQuery};
use ioto_domain::{Actor, Error, Permission, Result, Scope, TenantId};
use uuid::Uuid;

/// How many periods before the one holding yesterday the scheduler checks for late CDRs.
const LATE_PERIODS: usize = 12;

impl BillingService {
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

    pub(super) async fn run(
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
    pub(super) async fn job(
        &self,
        card: RateCard,
        run_id: Uuid,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<RatingJob> {
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

    /// The run a closed period was invoiced from.
    pub(super) async fn closed_run(&self, tenant: TenantId, c: &ClosedPeriod) -> Result<RatingRun> {
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
    pub(super) async fn rate_late_periods(
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
    pub(super) async fn rate_periods_of(
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
    pub(super) async fn rate_cards_periods(
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
    pub(super) async fn rate_card_period(
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
}
