//! The billing mutations.

use super::*;
use crate::context::{actor, services};
use crate::error::GqlResult;
use crate::scalars::parse_tenant;
use crate::scalars::Date;
use crate::scalars::Decimal;
use chrono::Utc;
use ioto_app::billing::{NewCharge, NewRateCard, Requester};
use ioto_domain::billing::money::{Currency, Price};
use ioto_domain::TenantId;

#[derive(Default)]
pub struct BillingMutation;

#[Object]
impl BillingMutation {
    /// PLATFORM_ADMIN: a tenant's retail or supplier card with its price history.
    async fn create_rate_card(
        &self,
        ctx: &Context<'_>,
        input: CreateRateCardInput,
    ) -> async_graphql::Result<RateCardObject> {
        let actor = actor(ctx)?;
        let tenant = TenantId::parse(&input.tenant_id, "tenantId").gql()?;
        let currency = Currency::parse("currency", &input.currency).gql()?;
        let versions = input
            .versions
            .into_iter()
            .enumerate()
            .map(|(i, v)| v.terms(&format!("versions[{i}].")))
            .collect::<Result<Vec<_>, _>>()
            .gql()?;
        let card = services(ctx)
            .billing
            .create_rate_card(
                actor,
                NewRateCard {
                    tenant_id: tenant,
                    kind: input.kind.into(),
                    name: input.name,
                    currency,
                    billing_period: input.billing_period.into(),
                    versions,
                },
            )
            .await
            .gql()?;
        Ok(RateCardObject(card))
    }

    /// PLATFORM_ADMIN: a new version taking effect today or later.
    async fn add_rate_card_version(
        &self,
        ctx: &Context<'_>,
        rate_card_id: ID,
        version: RateCardVersionInput,
    ) -> async_graphql::Result<RateCardObject> {
        let id = parse_uuid(&rate_card_id, "rateCardId")?;
        let terms = version.terms("version.").gql()?;
        Ok(RateCardObject(
            services(ctx)
                .billing
                .add_version(actor(ctx)?, id, terms)
                .await
                .gql()?,
        ))
    }

    /// PLATFORM_ADMIN: the card prices nothing from `from` (today or later).
    async fn retire_rate_card(
        &self,
        ctx: &Context<'_>,
        rate_card_id: ID,
        from: Date,
    ) -> async_graphql::Result<RateCardObject> {
        let id = parse_uuid(&rate_card_id, "rateCardId")?;
        Ok(RateCardObject(
            services(ctx)
                .billing
                .retire(actor(ctx)?, id, from.0)
                .await
                .gql()?,
        ))
    }

    /// PLATFORM_ADMIN or TENANT_ADMIN: rates the billing period holding `day` (today by default)
    /// now, for every card of the tenant; the result replaces the period's previous one.
    async fn rate_billing_period(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        day: Option<Date>,
    ) -> async_graphql::Result<Vec<RatingRunObject>> {
        let actor = actor(ctx)?;
        let tenant = actor.target_tenant(parse_tenant(tenant_id.as_ref())?).gql()?;
        let day = day.map(|d| d.0).unwrap_or_else(|| Utc::now().date_naive());
        let runs = services(ctx)
            .billing
            .rate_period(Requester::User(actor), tenant, day)
            .await
            .gql()?;
        Ok(runs.into_iter().map(Into::into).collect())
    }

    /// PLATFORM_ADMIN: a charge (or credit) on a tenant's invoice for an open period.
    async fn add_invoice_charge(
        &self,
        ctx: &Context<'_>,
        input: InvoiceChargeInput,
    ) -> async_graphql::Result<InvoiceChargeObject> {
        let tenant = TenantId::parse(&input.tenant_id, "tenantId").gql()?;
        let unit_price = Price::parse("unitPrice", &input.unit_price).gql()?;
        let day = input.day.map(|d| d.0).unwrap_or_else(|| Utc::now().date_naive());
        let c = services(ctx)
            .billing
            .add_charge(
                actor(ctx)?,
                NewCharge {
                    tenant,
                    day,
                    description: &input.description,
                    quantity: u64::from(input.quantity),
                    unit_price,
                    credit: input.credit,
                },
            )
            .await
            .gql()?;
        Ok(InvoiceChargeObject {
            id: ID(c.id.to_string()),
            period_start: Date(c.period_start),
            description: c.description.clone(),
            quantity: c.quantity.into(),
            unit_price: price(c.unit_price),
            credit: c.credit,
            amount: Decimal(c.amount()),
        })
    }

    /// PLATFORM_ADMIN: the period's current rating becomes final (what is invoiced); CDRs that
    /// arrive later for it are charged in the next open period.
    async fn close_billing_period(
        &self,
        ctx: &Context<'_>,
        rate_card_id: ID,
        period_start: Date,
    ) -> async_graphql::Result<ClosedPeriodObject> {
        let id = parse_uuid(&rate_card_id, "rateCardId")?;
        Ok(services(ctx)
            .billing
            .close_period(actor(ctx)?, id, period_start.0)
            .await
            .gql()?
            .into())
    }
}
