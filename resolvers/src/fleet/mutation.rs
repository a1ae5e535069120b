//! Fleet mutations: SIM and device changes, the coordination layer, labels, imports.

use async_graphql::{Context, InputObject, MaybeUndefined, Object, SimpleObject, ID};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use ioto_app::fleet::{
    DeviceInput, DevicePatch, ImportRequest, LabelChange, SimInput, SimPatch, StateChangeOutcome,
};
use ioto_domain::fleet::device::Imei;
use ioto_domain::fleet::import::TableFormat;
use ioto_domain::identifiers::{Imsi, Msisdn};
use ioto_domain::{CustomerId, Error};
use uuid::Uuid;

use crate::context::{actor, services};
use crate::enums::{
    ConnectivityKind, DeviceKindKind, DeviceStateKind, RetireSimsKind, SimStateKind, SimTypeKind,
    TableFormatKind,
};
use crate::error::{to_gql, GqlResult};
use crate::fleet::parse_device;
use crate::fleet::{
    effects, labels_from, DeviceFilterInput, EffectObject, FleetSettingsObject, ImportReportObject,
    LabelInput, LabelSuggestionObject, ScheduledTransitionObject, SimFilterInput,
};
use crate::fleet::{DeviceObject, DevicePayload, SimObject, SimPayload};
use crate::scalars::parse_tenant;
use crate::scalars::IccidScalar;

#[derive(Default)]
pub struct FleetMutation;

fn field<T>(r: ioto_domain::Result<T>, field: &str) -> async_graphql::Result<T> {
    r.map_err(|e| match e {
        Error::InvalidInput { reason, .. } => to_gql(Error::invalid(field, reason)),
        other => to_gql(other),
    })
}

fn customer(id: Option<&ID>, name: &str) -> async_graphql::Result<Option<CustomerId>> {
    id.map(|id| CustomerId::parse(id, name))
        .transpose()
        .map_err(to_gql)
}

/// `MaybeUndefined` to "keep" (`None`), "clear" (`Some(None)`) or "set".
fn patch<T>(v: MaybeUndefined<T>) -> Option<Option<T>> {
    match v {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(x) => Some(Some(x)),
    }
}

#[derive(InputObject)]
pub struct CreateSimInput {
    pub tenant_id: Option<ID>,
    pub customer_id: Option<ID>,
    pub iccid: IccidScalar,
    pub imsi: String,
    pub msisdn: Option<String>,
    #[graphql(name = "type", default_with = "SimTypeKind::Postpaid")]
    pub sim_type: SimTypeKind,
    pub tariff_plan: Option<String>,
    pub labels: Option<Vec<LabelInput>>,
    /// 4 to 8 digits; stored encrypted.
    pub pin: Option<String>,
    /// 8 digits; stored encrypted.
    pub puk: Option<String>,
    pub activation_code: Option<String>,
}

/// Leave a field out to keep it; null clears an optional one.
#[derive(InputObject)]
pub struct UpdateSimInput {
    pub msisdn: MaybeUndefined<String>,
    #[graphql(name = "type")]
    pub sim_type: Option<SimTypeKind>,
    pub tariff_plan: MaybeUndefined<String>,
    pub activation_code: MaybeUndefined<String>,
    pub pin: MaybeUndefined<String>,
    pub puk: MaybeUndefined<String>,
}

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

#[derive(InputObject)]
pub struct LabelChangeInput {
    /// Labels to add or overwrite.
    pub set: Option<Vec<LabelInput>>,
    /// Keys to remove.
    pub remove: Option<Vec<String>>,
    /// Drop every label not in `set` (default false).
    pub replace: Option<bool>,
}

impl LabelChangeInput {
    fn parse(&self) -> async_graphql::Result<LabelChange> {
        let mut set = Vec::new();
        for l in self.set.iter().flatten() {
            let value = l.value.clone().ok_or_else(|| {
                to_gql(Error::invalid(
                    "set.value",
                    format!("label '{}' needs a value", l.key),
                ))
            })?;
            set.push((l.key.clone(), value));
        }
        Ok(LabelChange {
            set,
            remove: self.remove.clone().unwrap_or_default(),
            replace: self.replace.unwrap_or(false),
        })
    }
}

#[derive(InputObject)]
pub struct ImportSimsInput {
    pub tenant_id: Option<ID>,
    /// Every imported SIM goes to this sub-customer (default: the tenant itself).
    pub customer_id: Option<ID>,
    pub format: TableFormatKind,
    /// The file: CSV as text, XLSX as base64. Columns: iccid, imsi (required), msisdn, pin, puk,
    /// type, tariff_plan, activation_code. For large files use `POST /imports/sims`.
    pub content: String,
    /// false (default): check only and report; true: create the SIMs.
    pub commit: Option<bool>,
    /// With `commit`: create the good rows even when others have errors (default false).
    pub skip_invalid: Option<bool>,
    pub note: Option<String>,
}

/// What a state change did: applied now (with its effects) or scheduled.
#[derive(SimpleObject)]
pub struct SimStatePayload {
    pub sim: SimObject,
    /// Set when `effectiveAt` was in the future: the transition waits for its time.
    pub scheduled: Option<ScheduledTransitionObject>,
    pub effects: Vec<EffectObject>,
}

#[derive(SimpleObject)]
pub struct SwapPayload {
    /// The replaced SIM, now TERMINATED.
    pub old_sim: SimObject,
    /// The replacement, now carrying MSISDN, tariff, sub-customer, labels and device binding.
    pub new_sim: SimObject,
    pub effects: Vec<EffectObject>,
}

#[derive(SimpleObject)]
pub struct BindPayload {
    pub sim: SimObject,
    pub device: DeviceObject,
    pub effects: Vec<EffectObject>,
}

#[derive(SimpleObject)]
pub struct BulkPayload {
    /// How many changed (rows already in the target state are not counted).
    pub changed: i64,
}

#[Object]
impl FleetMutation {
    /// Creates one SIM in INVENTORY. OPERATOR and up.
    async fn create_sim(
        &self,
        ctx: &Context<'_>,
        input: CreateSimInput,
        note: Option<String>,
    ) -> async_graphql::Result<SimObject> {
        let sim = SimInput {
            tenant_id: parse_tenant(input.tenant_id.as_ref())?,
            customer_id: customer(input.customer_id.as_ref(), "customerId")?,
            iccid: input.iccid.0,
            imsi: field(Imsi::parse(&input.imsi), "imsi")?,
            msisdn: input.msisdn.as_deref().map(Msisdn::parse).transpose().gql()?,
            sim_type: input.sim_type.into(),
            tariff_plan: input.tariff_plan,
            labels: labels_from(input.labels.as_deref().unwrap_or_default()).gql()?,
            pin: input.pin,
            puk: input.puk,
            activation_code: input.activation_code,
        };
        let sim = services(ctx)
            .fleet
            .create_sim(actor(ctx)?, sim, note.as_deref())
            .await
            .gql()?;
        Ok(SimObject(sim))
    }

    /// Changes a SIM's settings. `expectedVersion` (the `version` you read) makes a concurrent
    /// change answer CONFLICT instead of being overwritten.
    async fn update_sim(
        &self,
        ctx: &Context<'_>,
        iccid: IccidScalar,
        input: UpdateSimInput,
        expected_version: Option<i64>,
        note: Option<String>,
    ) -> async_graphql::Result<SimPayload> {
        let iccid = iccid.0;
        let msisdn = match patch(input.msisdn) {
            Some(Some(m)) => Some(Some(Msisdn::parse(&m).gql()?)),
            Some(None) => Some(None),
            None => None,
        };
        let p = SimPatch {
            msisdn,
            sim_type: input.sim_type.map(Into::into),
            tariff_plan: patch(input.tariff_plan),
            activation_code: patch(input.activation_code),
            pin: patch(input.pin),
            puk: patch(input.puk),
        };
        let out = services(ctx)
            .fleet
            .update_sim(actor(ctx)?, &iccid, p, expected_version, note.as_deref())
            .await
            .gql()?;
        Ok(SimPayload {
            sim: SimObject(out.value),
            effects: out.effects,
        })
    }

    /// Moves a SIM to another state, now or at `effectiveAt` (then it is scheduled, listed and
    /// cancellable until applied). Refusals name the current state and the allowed ones.
    async fn change_sim_state(
        &self,
        ctx: &Context<'_>,
        iccid: IccidScalar,
        state: SimStateKind,
        expected_version: Option<i64>,
        effective_at: Option<DateTime<Utc>>,
        note: Option<String>,
    ) -> async_graphql::Result<SimStatePayload> {
        let iccid = iccid.0;
        let svc = &services(ctx).fleet;
        let actor = actor(ctx)?;
        match svc
            .change_sim_state(
                actor,
                &iccid,
                state.into(),
                expected_version,
                effective_at,
                note.as_deref(),
            )
            .await
            .gql()?
        {
            StateChangeOutcome::Applied(out) => Ok(SimStatePayload {
                sim: SimObject(out.value),
                scheduled: None,
                effects: effects(&out.effects),
            }),
            StateChangeOutcome::Scheduled(s) => {
                let sim = svc
                    .sim(actor, &iccid)
                    .await
                    .gql()?
                    .ok_or_else(|| to_gql(Error::not_found("SIM", &iccid)))?;
                Ok(SimStatePayload {
                    sim: SimObject(sim),
                    scheduled: Some(ScheduledTransitionObject(s)),
                    effects: Vec::new(),
                })
            }
        }
    }

    /// Asks the network to cancel the SIM's current location, so its device attaches again (a
    /// remedy for a device stuck on a network). The SIM must be ACTIVE or SUSPENDED; audited as
    /// `LOCATION_UPDATED`, or `NETWORK_FAILED` with the reason.
    async fn request_location_update(
        &self,
        ctx: &Context<'_>,
        iccid: IccidScalar,
        note: Option<String>,
    ) -> async_graphql::Result<SimObject> {
        let sim = services(ctx)
            .fleet
            .request_location_update(actor(ctx)?, &iccid.0, note.as_deref())
            .await
            .gql()?;
        Ok(SimObject(sim))
    }

    /// Cancels a pending scheduled transition.
    async fn cancel_scheduled_transition(
        &self,
        ctx: &Context<'_>,
        id: ID,
        note: Option<String>,
    ) -> async_graphql::Result<ScheduledTransitionObject> {
        let id = Uuid::parse_str(id.trim())
            .map_err(|_| to_gql(Error::invalid("id", "is not a valid id (expected a UUID)")))?;
        let s = services(ctx)
            .fleet
            .cancel_schedule(actor(ctx)?, id, note.as_deref())
            .await
            .gql()?;
        Ok(ScheduledTransitionObject(s))
    }

    async fn change_sim_labels(
        &self,
        ctx: &Context<'_>,
        iccid: IccidScalar,
        change: LabelChangeInput,
        expected_version: Option<i64>,
        note: Option<String>,
    ) -> async_graphql::Result<SimPayload> {
        let iccid = iccid.0;
        let out = services(ctx)
            .fleet
            .change_sim_labels(
                actor(ctx)?,
                &iccid,
                &change.parse()?,
                expected_version,
                note.as_deref(),
            )
            .await
            .gql()?;
        Ok(SimPayload {
            sim: SimObject(out.value),
            effects: out.effects,
        })
    }

    /// Assigns a SIM to a sub-customer; `customerId: null` gives it back to the tenant.
    async fn assign_sim(
        &self,
        ctx: &Context<'_>,
        iccid: IccidScalar,
        customer_id: Option<ID>,
        expected_version: Option<i64>,
        note: Option<String>,
    ) -> async_graphql::Result<SimPayload> {
        let iccid = iccid.0;
        let customer = customer(customer_id.as_ref(), "customerId")?;
        let out = services(ctx)
            .fleet
            .assign_sim(actor(ctx)?, &iccid, customer, expected_version, note.as_deref())
            .await
            .gql()?;
        Ok(SimPayload {
            sim: SimObject(out.value),
            effects: out.effects,
        })
    }

    /// Assigns every SIM matching `filter` in one go (one audit entry per SIM that changed).
    async fn assign_sims(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        filter: SimFilterInput,
        customer_id: Option<ID>,
        note: Option<String>,
    ) -> async_graphql::Result<BulkPayload> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let customer = customer(customer_id.as_ref(), "customerId")?;
        let n = services(ctx)
            .fleet
            .assign_sims_where(actor(ctx)?, tenant, &filter.parse()?, customer, note.as_deref())
            .await
            .gql()?;
        Ok(BulkPayload {
            changed: i64::try_from(n).unwrap_or(i64::MAX),
        })
    }

    /// Replaces a SIM: MSISDN, tariff plan, sub-customer, labels and device binding move to the
    /// new SIM (which must be in INVENTORY); the old one is terminated. One transaction.
    async fn swap_sim(
        &self,
        ctx: &Context<'_>,
        old_iccid: IccidScalar,
        new_iccid: IccidScalar,
        note: Option<String>,
    ) -> async_graphql::Result<SwapPayload> {
        let (old, new) = (old_iccid.0, new_iccid.0);
        let out = services(ctx)
            .fleet
            .swap_sim(actor(ctx)?, &old, &new, note.as_deref())
            .await
            .gql()?;
        Ok(SwapPayload {
            old_sim: SimObject(out.value.0),
            new_sim: SimObject(out.value.1),
            effects: effects(&out.effects),
        })
    }

    /// Puts a SIM into a device (a device may hold several SIMs, a SIM sits in at most one).
    async fn bind_sim(
        &self,
        ctx: &Context<'_>,
        iccid: IccidScalar,
        device_id: ID,
        note: Option<String>,
    ) -> async_graphql::Result<BindPayload> {
        let iccid = iccid.0;
        let device = parse_device(&device_id, "deviceId")?;
        let out = services(ctx)
            .fleet
            .bind(actor(ctx)?, &iccid, device, note.as_deref())
            .await
            .gql()?;
        Ok(BindPayload {
            sim: SimObject(out.value.0),
            device: DeviceObject(out.value.1),
            effects: effects(&out.effects),
        })
    }

    async fn unbind_sim(
        &self,
        ctx: &Context<'_>,
        iccid: IccidScalar,
        note: Option<String>,
    ) -> async_graphql::Result<SimPayload> {
        let iccid = iccid.0;
        let out = services(ctx)
            .fleet
            .unbind(actor(ctx)?, &iccid, note.as_deref())
            .await
            .gql()?;
        Ok(SimPayload {
            sim: SimObject(out.value),
            effects: out.effects,
        })
    }

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

    /// Checks an inventory file and reports every bad row; with `commit: true` creates the SIMs
    /// (all or nothing; each gets an IMPORTED audit entry).
    async fn import_sims(
        &self,
        ctx: &Context<'_>,
        input: ImportSimsInput,
    ) -> async_graphql::Result<ImportReportObject> {
        let format: TableFormat = input.format.into();
        let bytes = match format {
            TableFormat::Csv => input.content.into_bytes(),
            TableFormat::Xlsx => base64::engine::general_purpose::STANDARD
                .decode(input.content.trim())
                .map_err(|_| to_gql(Error::invalid("content", "an XLSX file must be sent as base64")))?,
        };
        let req = ImportRequest {
            tenant_id: parse_tenant(input.tenant_id.as_ref())?,
            customer_id: customer(input.customer_id.as_ref(), "customerId")?,
            format,
            bytes,
            commit: input.commit.unwrap_or(false),
            skip_invalid: input.skip_invalid.unwrap_or(false),
            note: input.note,
        };
        let report = services(ctx).fleet.import_sims(actor(ctx)?, req).await.gql()?;
        Ok(report.into())
    }

    /// Adds or replaces a suggested label key (with values) in the tenant's catalogue.
    async fn put_label_suggestion(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        key: String,
        values: Option<Vec<String>>,
        description: Option<String>,
    ) -> async_graphql::Result<LabelSuggestionObject> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let s = services(ctx)
            .fleet
            .put_label_suggestion(
                actor(ctx)?,
                tenant,
                &key,
                &values.unwrap_or_default(),
                description.as_deref(),
            )
            .await
            .gql()?;
        Ok(s.into())
    }

    async fn remove_label_suggestion(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        key: String,
    ) -> async_graphql::Result<bool> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        services(ctx)
            .fleet
            .remove_label_suggestion(actor(ctx)?, tenant, &key)
            .await
            .gql()?;
        Ok(true)
    }

    /// TENANT_ADMIN: whether sub-customer users see SIMs (and usage) or devices only, and
    /// whether they see the cost of their usage, and how many SIMs an OPERATOR may change in one
    /// bulk job (0 to 1,000,000). A setting left out keeps its value.
    async fn set_fleet_settings(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        customers_see_sims: Option<bool>,
        customers_see_costs: Option<bool>,
        operator_bulk_limit: Option<i32>,
    ) -> async_graphql::Result<FleetSettingsObject> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let fleet = &services(ctx).fleet;
        let actor = actor(ctx)?;
        let mut settings = fleet.settings(actor, tenant).await.gql()?;
        if let Some(v) = customers_see_sims {
            settings.customers_see_sims = v;
        }
        if let Some(v) = customers_see_costs {
            settings.customers_see_costs = v;
        }
        if let Some(v) = operator_bulk_limit {
            settings.operator_bulk_limit =
                u32::try_from(v).ok().filter(|v| *v <= 1_000_000).ok_or_else(|| {
                    crate::to_gql(ioto_domain::Error::invalid(
                        "operatorBulkLimit",
                        "must be between 0 and 1000000",
                    ))
                })?;
        }
        let s = fleet.set_settings(actor, tenant, settings).await.gql()?;
        Ok(s.into())
    }
}
