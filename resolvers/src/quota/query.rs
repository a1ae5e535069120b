//! The quota queries (a SIM's own quota is `Sim.quota`).

use async_graphql::{Context, Object, ID};

use super::QuotaDefaultObject;
use crate::context::{actor, services};
use crate::error::GqlResult;
use crate::scalars::parse_tenant;

#[derive(Default)]
pub struct QuotaQuery;

#[Object]
impl QuotaQuery {
    /// The tenant's default data quotas: its own (no tariff plan) and its tariff plans'.
    async fn quota_defaults(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
    ) -> async_graphql::Result<Vec<QuotaDefaultObject>> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        Ok(services(ctx)
            .quotas
            .quota_defaults(actor(ctx)?, tenant)
            .await
            .gql()?
            .into_iter()
            .map(QuotaDefaultObject)
            .collect())
    }
}
