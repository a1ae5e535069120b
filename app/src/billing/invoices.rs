//! Invoices: charges added to a period, the tenant's invoice with its supplier cost, and closing a
//! period.

use super::*;
use chrono::{NaiveDate, Utc};
use ioto_domain::billing::adjustment::PeriodAdjustment;
use ioto_domain::billing::invoice::{invoice_lines, InvoiceCharge, TenantInvoice};
use ioto_domain::billing::money::{Cost, Price};
use ioto_domain::billing::rate_card::{RateCard, RateCardKind};
use ioto_domain::ports::billing::ClosedPeriod;
use ioto_domain::{Actor, Error, Permission, Result, Scope, TenantId};
use uuid::Uuid;

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

impl BillingService {
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
    pub(super) async fn supplier_cost(
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
