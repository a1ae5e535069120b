//! The billing queries.

use super::*;
use crate::context::{actor, services};
use crate::error::GqlResult;
use crate::scalars::parse_tenant;
use crate::scalars::Date;
use crate::scalars::Decimal;
use chrono::Utc;
use ioto_domain::billing::money::Cost;
use ioto_domain::TenantId;

#[derive(Default)]
pub struct BillingQuery;

#[Object]
impl BillingQuery {
    /// The tenant's rate cards the caller may see (the retail card; the supplier card too for
    /// platform admins).
    async fn rate_cards(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
    ) -> async_graphql::Result<Vec<RateCardObject>> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let cards = services(ctx)
            .billing
            .rate_cards(actor(ctx)?, tenant)
            .await
            .gql()?;
        Ok(cards.into_iter().map(RateCardObject).collect())
    }

    async fn rate_card(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<RateCardObject> {
        let id = parse_uuid(&id, "id")?;
        Ok(RateCardObject(
            services(ctx).billing.rate_card(actor(ctx)?, id).await.gql()?,
        ))
    }

    /// The current rating of the billing period holding `day` (today by default) for the card of
    /// `kind`, summed by `by`: usage and cost per sub-customer (to bill them), per SIM, network,
    /// zone, day, month or tariff plan. A customer user sees its own rows only. `null` when the
    /// period has not been rated.
    #[graphql(complexity = "crate::limits::rated_cost(by, child_complexity)")]
    async fn rated_usage(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        #[graphql(default_with = "RateCardKindGql::Retail")] kind: RateCardKindGql,
        day: Option<Date>,
        by: RatedDimensionGql,
    ) -> async_graphql::Result<Option<RatedPeriodObject>> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let day = day.map(|d| d.0).unwrap_or_else(|| Utc::now().date_naive());
        let Some(p) = services(ctx)
            .billing
            .rated_usage(actor(ctx)?, tenant, kind.into(), day, by.into())
            .await
            .gql()?
        else {
            return Ok(None);
        };
        let usage_total: Cost = p.usage.iter().map(|(_, s)| s.cost).sum();
        let fees_total: Cost = p.fees.iter().map(|(_, f)| f.fees).sum();
        Ok(Some(RatedPeriodObject {
            currency: p.currency.code().to_owned(),
            run: p.run.into(),
            by,
            usage: p
                .usage
                .into_iter()
                .map(|(key, s)| RatedUsageRowObject {
                    key,
                    records: s.records.into(),
                    bytes_in: s.bytes_in.into(),
                    bytes_out: s.bytes_out.into(),
                    rounded_bytes: s.rounded_bytes.into(),
                    cost: Decimal(s.cost),
                })
                .collect(),
            fees_by: p.fees_by.into(),
            fees: p
                .fees
                .into_iter()
                .map(|(key, f)| AccessFeeRowObject {
                    key,
                    charges: f.charges.into(),
                    fees: Decimal(f.fees),
                })
                .collect(),
            usage_total: Decimal(usage_total),
            fees_total: Decimal(fees_total),
        }))
    }

    /// PLATFORM_ADMIN: a tenant's invoice data for the billing period holding `day` (today by
    /// default); `null` before the period is rated.
    async fn tenant_invoice(
        &self,
        ctx: &Context<'_>,
        tenant_id: ID,
        day: Option<Date>,
    ) -> async_graphql::Result<Option<TenantInvoiceObject>> {
        let tenant = TenantId::parse(&tenant_id, "tenantId").gql()?;
        let day = day.map(|d| d.0).unwrap_or_else(|| Utc::now().date_naive());
        Ok(services(ctx)
            .billing
            .tenant_invoice(actor(ctx)?, tenant, day)
            .await
            .gql()?
            .map(Into::into))
    }

    /// Rating runs, newest period first (at most `first`, 50 by default).
    #[graphql(complexity = "crate::limits::page_cost(Some(first.min(500) as i32), 50, child_complexity)")]
    async fn rating_runs(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        #[graphql(default = 50)] first: u32,
    ) -> async_graphql::Result<Vec<RatingRunObject>> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let runs = services(ctx)
            .billing
            .runs(actor(ctx)?, tenant, u64::from(first))
            .await
            .gql()?;
        Ok(runs.into_iter().map(Into::into).collect())
    }
}
