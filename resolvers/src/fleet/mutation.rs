//! Fleet mutations: SIM and device changes, the coordination layer, labels, imports.

use async_graphql::{Context, InputObject, MaybeUndefined, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use ioto_app::fleet::{LabelChange, SimInput, SimPatch, StateChangeOutcome};
use ioto_domain::identifiers::{Imsi, Msisdn};
use ioto_domain::{CustomerId, Error};
use uuid::Uuid;

use crate::context::{actor, services};
use crate::enums::{SimStateKind, SimTypeKind};
use crate::error::{to_gql, GqlResult};
use crate::fleet::parse_device;
use crate::fleet::{
    effects, labels_from, EffectObject, LabelInput, ScheduledTransitionObject, SimFilterInput,
};
use crate::fleet::{DeviceObject, SimObject, SimPayload};
use crate::scalars::parse_tenant;
use crate::scalars::IccidScalar;

#[derive(SimpleObject)]
pub struct BulkPayload {
    /// How many changed (rows already in the target state are not counted).
    pub changed: i64,
}

/// The SIM mutations.
#[derive(Default)]
pub struct SimMutation;

pub(super) fn field<T>(r: ioto_domain::Result<T>, field: &str) -> async_graphql::Result<T> {
    r.map_err(|e| match e {
        Error::InvalidInput { reason, .. } => to_gql(Error::invalid(field, reason)),
        other => to_gql(other),
    })
}

pub(super) fn customer(id: Option<&ID>, name: &str) -> async_graphql::Result<Option<CustomerId>> {
    id.map(|id| CustomerId::parse(id, name))
        .transpose()
        .map_err(to_gql)
}

/// `MaybeUndefined` to "keep" (`None`), "clear" (`Some(None)`) or "set".
pub(super) fn patch<T>(v: MaybeUndefined<T>) -> Option<Option<T>> {
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
pub struct LabelChangeInput {
    /// Labels to add or overwrite.
    pub set: Option<Vec<LabelInput>>,
    /// Keys to remove.
    pub remove: Option<Vec<String>>,
    /// Drop every label not in `set` (default false).
    pub replace: Option<bool>,
}

impl LabelChangeInput {
    pub(super) fn parse(&self) -> async_graphql::Result<LabelChange> {
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

#[Object]
impl SimMutation {
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
}
