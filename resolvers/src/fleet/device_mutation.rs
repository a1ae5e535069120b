//! Device mutations: create, change, state, labels, assignment to sub-customers.

use super::mutation::*;
use crate::context::{actor, services};
use crate::enums::{ConnectivityKind, DeviceKindKind, DeviceStateKind, RetireSimsKind};
use crate::error::GqlResult;
use crate::fleet::parse_device;
use crate::fleet::{labels_from, DeviceFilterInput, LabelInput};
use crate::fleet::{DeviceObject, DevicePayload};
use crate::scalars::parse_tenant;
use async_graphql::{Context, InputObject, Object, ID};
use ioto_app::fleet::{DeviceInput, DevicePatch};
use ioto_domain::fleet::device::Imei;

#[derive(InputObject)]
pub struct CreateDeviceInput {
    pub tenant_id: Option<ID>,
    pub customer_id: Option<ID>,
    pub imei: String,
    pub name: String,
    pub kind: DeviceKindKind,
    pub connectivity: Vec<ConnectivityKind>,
    pub labels: Option<Vec<LabelInput>>,
}

#[derive(InputObject)]
pub struct UpdateDeviceInput {
    pub name: Option<String>,
    pub kind: Option<DeviceKindKind>,
    pub connectivity: Option<Vec<ConnectivityKind>>,
}

#[derive(Default)]
pub struct DeviceMutation;

#[Object]
impl DeviceMutation {
    /// Registers a device (state REGISTERED). OPERATOR and up.
    async fn create_device(
        &self,
        ctx: &Context<'_>,
        input: CreateDeviceInput,
        note: Option<String>,
    ) -> async_graphql::Result<DeviceObject> {
        let d = DeviceInput {
            tenant_id: parse_tenant(input.tenant_id.as_ref())?,
            customer_id: customer(input.customer_id.as_ref(), "customerId")?,
            imei: field(Imei::parse(&input.imei), "imei")?,
            name: input.name,
            kind: input.kind.into(),
            connectivity: input.connectivity.into_iter().map(Into::into).collect(),
            labels: labels_from(input.labels.as_deref().unwrap_or_default()).gql()?,
        };
        let d = services(ctx)
            .fleet
            .create_device(actor(ctx)?, d, note.as_deref())
            .await
            .gql()?;
        Ok(DeviceObject(d))
    }

    async fn update_device(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateDeviceInput,
        expected_version: Option<i64>,
        note: Option<String>,
    ) -> async_graphql::Result<DevicePayload> {
        let id = parse_device(&id, "id")?;
        let p = DevicePatch {
            name: input.name,
            kind: input.kind.map(Into::into),
            connectivity: input
                .connectivity
                .map(|c| c.into_iter().map(Into::into).collect()),
        };
        let out = services(ctx)
            .fleet
            .update_device(actor(ctx)?, id, p, expected_version, note.as_deref())
            .await
            .gql()?;
        Ok(DevicePayload {
            device: DeviceObject(out.value),
            effects: out.effects,
        })
    }

    /// Moves a device to another state; SIM states are independent, except that retiring with
    /// `simsOnRetire: SUSPEND` suspends its ACTIVE SIMs.
    async fn change_device_state(
        &self,
        ctx: &Context<'_>,
        id: ID,
        state: DeviceStateKind,
        #[graphql(desc = "What happens to the SIMs when retiring (default LEAVE).")] sims_on_retire: Option<
            RetireSimsKind,
        >,
        expected_version: Option<i64>,
        note: Option<String>,
    ) -> async_graphql::Result<DevicePayload> {
        let id = parse_device(&id, "id")?;
        let out = services(ctx)
            .fleet
            .change_device_state(
                actor(ctx)?,
                id,
                state.into(),
                sims_on_retire.unwrap_or(RetireSimsKind::Leave).into(),
                expected_version,
                note.as_deref(),
            )
            .await
            .gql()?;
        Ok(DevicePayload {
            device: DeviceObject(out.value),
            effects: out.effects,
        })
    }

    async fn change_device_labels(
        &self,
        ctx: &Context<'_>,
        id: ID,
        change: LabelChangeInput,
        expected_version: Option<i64>,
        note: Option<String>,
    ) -> async_graphql::Result<DevicePayload> {
        let id = parse_device(&id, "id")?;
        let out = services(ctx)
            .fleet
            .change_device_labels(
                actor(ctx)?,
                id,
                &change.parse()?,
                expected_version,
                note.as_deref(),
            )
            .await
            .gql()?;
        Ok(DevicePayload {
            device: DeviceObject(out.value),
            effects: out.effects,
        })
    }

    /// Assigns a device (and the SIMs in it) to a sub-customer; null gives it back to the tenant.
    async fn assign_device(
        &self,
        ctx: &Context<'_>,
        id: ID,
        customer_id: Option<ID>,
        expected_version: Option<i64>,
        note: Option<String>,
    ) -> async_graphql::Result<DevicePayload> {
        let id = parse_device(&id, "id")?;
        let customer = customer(customer_id.as_ref(), "customerId")?;
        let out = services(ctx)
            .fleet
            .assign_device(actor(ctx)?, id, customer, expected_version, note.as_deref())
            .await
            .gql()?;
        Ok(DevicePayload {
            device: DeviceObject(out.value),
            effects: out.effects,
        })
    }

    /// Assigns every device matching `filter`, and the SIMs in them.
    async fn assign_devices(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        filter: DeviceFilterInput,
        customer_id: Option<ID>,
        note: Option<String>,
    ) -> async_graphql::Result<BulkPayload> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let customer = customer(customer_id.as_ref(), "customerId")?;
        let n = services(ctx)
            .fleet
            .assign_devices_where(actor(ctx)?, tenant, &filter.parse()?, customer, note.as_deref())
            .await
            .gql()?;
        Ok(BulkPayload {
            changed: i64::try_from(n).unwrap_or(i64::MAX),
        })
    }
}
