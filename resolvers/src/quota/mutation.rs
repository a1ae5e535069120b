//! The quota mutations.

use async_graphql::{Context, Object};
use chrono::Utc;

use super::{SimQuotaInput, SimQuotaObject};
use crate::context::{actor, services};
use crate::error::GqlResult;
use crate::scalars::IccidScalar;

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
}
