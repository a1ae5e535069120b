//! The quota mutations.

use async_graphql::{Context, Object, ID};
use chrono::Utc;

use super::{
    big, QuotaDefaultObject, QuotaDefaultPayload, QuotasByFilterPayload, SimQuotaInput, SimQuotaObject,
};
use crate::context::{actor, services};
use crate::error::GqlResult;
use crate::fleet::types::SimFilterInput;
use crate::scalars::{parse_tenant, BigInt, IccidScalar};

/// An `expectedCount` argument as a count.
fn expected(count: Option<BigInt>) -> async_graphql::Result<Option<u64>> {
    count
        .map(|c| {
            u64::try_from(c.0)
                .map_err(|_| crate::to_gql(ioto_domain::Error::invalid("expectedCount", "must be 0 or more")))
        })
        .transpose()
}

#[derive(Default)]
pub struct QuotaMutation;

#[Object]
impl QuotaMutation {
    /// Sets a SIM's data quota, replacing the one it had. The limit applies to what the SIM
    /// used already this period: a SIM past it is acted on at once.
    async fn set_sim_quota(
        &self,
        ctx: &Context<'_>,
        iccid: IccidScalar,
        input: SimQuotaInput,
    ) -> async_graphql::Result<SimQuotaObject> {
        let rule = input.rule()?;
        let actor = actor(ctx)?;
        let quotas = &services(ctx).quotas;
        quotas.set_sim_quota(actor, &iccid.0, rule).await.gql()?;
        let status = quotas.sim_quota(actor, &iccid.0, Utc::now()).await.gql()?;
        status
            .map(SimQuotaObject)
            .ok_or_else(|| crate::to_gql(ioto_domain::Error::not_found("SIM", &iccid.0)))
    }

    /// Removes a SIM's data quota. Returns whether it had one.
    async fn remove_sim_quota(&self, ctx: &Context<'_>, iccid: IccidScalar) -> async_graphql::Result<bool> {
        services(ctx)
            .quotas
            .remove_sim_quota(actor(ctx)?, &iccid.0)
            .await
            .gql()
    }

    /// Sets the data quota on every SIM the filter matches (at most 100,000), replacing the
    /// ones they had and overriding their defaults. With `expectedCount` (the count the caller
    /// was shown), a filter that matches another number now is refused rather than applied.
    async fn set_sim_quotas(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        filter: SimFilterInput,
        expected_count: Option<BigInt>,
        input: SimQuotaInput,
    ) -> async_graphql::Result<QuotasByFilterPayload> {
        let rule = input.rule()?;
        let filter = filter.parse()?;
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let done = services(ctx)
            .quotas
            .set_sim_quotas(actor(ctx)?, tenant, &filter, expected(expected_count)?, rule)
            .await
            .gql()?;
        Ok(QuotasByFilterPayload {
            matched: big(done.matched),
            changed: big(done.changed),
        })
    }

    /// Removes the quotas set on the SIMs the filter matches; those with a default follow it
    /// again. `expectedCount` as for `setSimQuotas`.
    async fn remove_sim_quotas(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        filter: SimFilterInput,
        expected_count: Option<BigInt>,
    ) -> async_graphql::Result<QuotasByFilterPayload> {
        let filter = filter.parse()?;
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let done = services(ctx)
            .quotas
            .remove_sim_quotas(actor(ctx)?, tenant, &filter, expected(expected_count)?)
            .await
            .gql()?;
        Ok(QuotasByFilterPayload {
            matched: big(done.matched),
            changed: big(done.changed),
        })
    }

    /// Sets the tenant's default data quota (without `tariffPlan`) or a tariff plan's, replacing
    /// the one there was. SIMs without a quota of their own follow it at once.
    async fn set_quota_default(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        tariff_plan: Option<String>,
        input: SimQuotaInput,
    ) -> async_graphql::Result<QuotaDefaultPayload> {
        let rule = input.rule()?;
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let (stored, applied) = services(ctx)
            .quotas
            .set_quota_default(actor(ctx)?, tenant, tariff_plan, rule)
            .await
            .gql()?;
        Ok(QuotaDefaultPayload {
            quota_default: QuotaDefaultObject(stored),
            sims_added: big(applied.added),
            sims_changed: big(applied.changed),
            sims_removed: big(applied.removed),
        })
    }

    /// Removes the tenant's default (without `tariffPlan`) or a tariff plan's. Its SIMs lose
    /// their quota, or follow the tenant's default. Returns whether there was one.
    async fn remove_quota_default(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        tariff_plan: Option<String>,
    ) -> async_graphql::Result<bool> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        services(ctx)
            .quotas
            .remove_quota_default(actor(ctx)?, tenant, tariff_plan.as_deref())
            .await
            .gql()
    }

    /// Sets and removes data quotas from a file (GraphQL multipart request), one SIM per row:
    /// columns `iccid`, `limit` (e.g. `1.5 GB`, `500 MiB`, or bytes), `stages` (e.g. `80;90`),
    /// `action` (NOTIFY, SUSPEND or REMOVE) and `resume_next_period` — see
    /// `ImportSimQuotasInput.file`. Every row is checked before anything is written, each error
    /// naming its line, column and value; ICCIDs must be SIMs you manage in the tenant, each
    /// once. Without `commit` only the report comes back. With `commit: true` the quotas are set
    /// (overriding the SIMs' defaults, measured against this period's usage at once) and the
    /// REMOVE rows' quotas removed — unless a row has errors, which refuses the whole file
    /// (naming `file`) without `skipInvalid: true`. At most 20 MB and 100,000 rows.
    async fn import_sim_quotas(
        &self,
        ctx: &Context<'_>,
        input: super::import::ImportSimQuotasInput,
    ) -> async_graphql::Result<super::import::SimQuotaImportReportObject> {
        super::import::import_sim_quotas(ctx, input).await
    }
}
