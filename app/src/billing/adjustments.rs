//! Late adjustments: usage that arrives after a period closed is booked as a dated adjustment
//! to that period, never as a change to a closed invoice.

use super::*;
use chrono::{NaiveDate, Utc};
use ioto_domain::billing::adjustment::{delta, PeriodAdjustment};
use ioto_domain::billing::rate_card::RateCard;
use ioto_domain::ports::billing::ClosedPeriod;
use ioto_domain::{Error, Result, Scope};
use uuid::Uuid;

impl BillingService {
    /// Books the late usage of the card's closed periods before `period_start` into the
    /// period starting `period_start` (open): see [`ioto_domain::billing::adjustment`]. A closed period
    /// is rated again only when its CDR count differs from the one its last rating saw.
    pub(super) async fn book_adjustments(
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
}
