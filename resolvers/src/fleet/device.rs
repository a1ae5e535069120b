use async_graphql::{ComplexObject, Context, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use ioto_domain::fleet::audit::EntityKind;
use ioto_domain::fleet::Device;

use super::types::{labels_of, AuditEntryObject, LabelObject};
use super::SimObject;
use crate::context::{actor, loaders, services};
use crate::directory::CustomerObject;
use crate::enums::{ConnectivityKind, DeviceKindKind, DeviceStateKind};
use crate::error::GqlResult;
use crate::loaders::gql_err;
use crate::loaders::SimsIn;

/// A device (tracker, sensor, gateway, …) with its own lifecycle; it may hold several SIMs.
pub struct DeviceObject(pub Device);

#[Object(name = "Device")]
impl DeviceObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn tenant_id(&self) -> ID {
        ID(self.0.tenant_id.to_string())
    }
    /// 15 digits, Luhn-checked.
    async fn imei(&self) -> &str {
        self.0.imei.as_str()
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn kind(&self) -> DeviceKindKind {
        self.0.kind.into()
    }
    async fn connectivity(&self) -> Vec<ConnectivityKind> {
        self.0.connectivity.iter().map(|c| (*c).into()).collect()
    }
    async fn state(&self) -> DeviceStateKind {
        self.0.state.into()
    }
    /// Pass it back as `expectedVersion` to be told when someone else changed the device meanwhile.
    async fn version(&self) -> i64 {
        self.0.version
    }
    async fn customer_id(&self) -> Option<ID> {
        self.0.customer_id.map(|c| ID(c.to_string()))
    }
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<CustomerObject>> {
        let Some(id) = self.0.customer_id else {
            return Ok(None);
        };
        Ok(loaders(ctx)?
            .fleet
            .load_one(id)
            .await
            .map_err(gql_err)?
            .map(CustomerObject))
    }
    /// SIMs in the device (empty for customers whose provider shares device data only).
    async fn sims(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SimObject>> {
        let list = loaders(ctx)?
            .fleet
            .load_one(SimsIn(self.0.id))
            .await
            .map_err(gql_err)?
            .unwrap_or_default();
        Ok(list.into_iter().map(SimObject).collect())
    }
    async fn labels(&self) -> Vec<LabelObject> {
        labels_of(&self.0.labels)
    }
    async fn last_activity_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_activity_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// The device's sensor readings in `[from, to)` (default: the last 24 hours), oldest first;
    /// at most `last` (default 500, at most 10,000) — the newest ones when there are more.
    #[graphql(complexity = "crate::limits::page_cost(last, 500, child_complexity)")]
    async fn telemetry(
        &self,
        ctx: &Context<'_>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        last: Option<i32>,
    ) -> async_graphql::Result<Vec<crate::usage::TelemetryReadingObject>> {
        let now = Utc::now();
        let last = match last.unwrap_or(500) {
            n @ 1..=10_000 => u64::try_from(n).unwrap_or(500),
            n => {
                return Err(crate::to_gql(ioto_domain::Error::invalid(
                    "last",
                    format!("{n} is outside 1..=10000"),
                )))
            }
        };
        let readings = services(ctx)
            .usage
            .device_telemetry(
                &self.0,
                from.unwrap_or(now - chrono::Duration::hours(24)),
                to.unwrap_or(now + chrono::Duration::minutes(1)),
                last,
            )
            .await
            .gql()?;
        Ok(readings.into_iter().map(Into::into).collect())
    }
    /// The device's audit trail, newest first.
    #[graphql(complexity = "crate::limits::page_cost(first, 50, child_complexity)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size (default 50).")] first: Option<i32>,
    ) -> async_graphql::Result<Vec<AuditEntryObject>> {
        let limit = ioto_domain::fleet::query::check_page_size(first.unwrap_or(50).into()).gql()?;
        let list = services(ctx)
            .fleet
            .events(
                actor(ctx)?,
                self.0.tenant_id,
                EntityKind::Device,
                self.0.id.0,
                limit,
            )
            .await
            .gql()?;
        Ok(list.into_iter().map(AuditEntryObject).collect())
    }
}

/// What a change to one device did.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct DevicePayload {
    pub device: DeviceObject,
    #[graphql(skip)]
    pub effects: Vec<ioto_domain::fleet::NewAuditEntry>,
}

#[ComplexObject]
impl DevicePayload {
    /// Every effect of the operation, on the device and its SIMs, in the order applied.
    async fn effects(&self) -> Vec<super::types::EffectObject> {
        super::types::effects(&self.effects)
    }
}
