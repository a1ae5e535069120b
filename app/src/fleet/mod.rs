//! Fleet use cases: SIMs and devices, the coordination layer, labels, audit, schedules, import.
//!
//! Every operation checks the caller's role, resolves visibility (a customer user sees its own
//! customer's devices, and SIMs only where the tenant allows it), applies the domain rules, and
//! hands the store one [`Changeset`] so that all effects commit together or not at all.

mod bulk;
mod coalesce;
mod devices;
mod gate;
mod import;
mod network;
mod notify;
mod sims;

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

pub use self::bulk::{look_up_sims, BulkFile, ProvisionWait, Provisioned, Submitted};
pub use self::coalesce::{ProvisionedOne, HOLD, RAPID_CALLS};
pub use self::devices::{DeviceInput, DevicePatch, RetireSims};
pub use self::gate::{FairGate, GatePermit};
pub use self::import::{read_and_check, read_and_check_on, ImportRequest};
pub use self::notify::{CreatedEndpoint, MAX_DESCRIPTION_LEN, MAX_WEBHOOK_ENDPOINTS};
pub use self::sims::{SimInput, SimPatch, StateChangeOutcome};
use ioto_domain::directory::Customer;
use ioto_domain::events::{FleetEvent, SimStateChanged};
use ioto_domain::fleet::audit::{AuditEntry, AuditQuery, AuditStamp, EntityKind, NewAuditEntry};
use ioto_domain::fleet::device::Device;
use ioto_domain::fleet::labels::{parse_key, parse_value, LabelSuggestion, Labels};
use ioto_domain::fleet::query::{
    CustomerFilter, DeviceFilter, DeviceSort, Page, SimFilter, SimSort, MAX_PAGE,
};
use ioto_domain::fleet::schedule::ScheduledTransition;
use ioto_domain::fleet::secret::{mask, SecretCipher};
use ioto_domain::fleet::sim::Sim;
use ioto_domain::fleet::{AuditAction, FleetSettings};
use ioto_domain::identifiers::Iccid;
use ioto_domain::notify::AddressPolicy;
use ioto_domain::ports::network::NetworkAdapter;
use ioto_domain::ports::{
    BulkJobStore, Changeset, Fleet, FleetNotifier, NotificationStore, ScheduleQuery, TableReader,
};
use ioto_domain::{Actor, CustomerId, DeviceId, Error, Permission, Result, Role, Scope, SimId, TenantId};

/// What a coordinated operation did: the rows as they are now and every effect, one per entity
/// and change, in the order applied.
#[derive(Debug, Clone)]
pub struct Outcome<T> {
    pub value: T,
    pub effects: Vec<NewAuditEntry>,
}

#[derive(Clone)]
pub struct FleetService {
    store: Arc<dyn Fleet>,
    /// Bulk jobs and their rows.
    jobs: Arc<dyn BulkJobStore>,
    /// Notifications, webhook endpoints and deliveries.
    notes: Arc<dyn NotificationStore>,
    cipher: Arc<SecretCipher>,
    reader: Arc<dyn TableReader>,
    notifier: Arc<dyn FleetNotifier>,
    network: Arc<dyn NetworkAdapter>,
    /// The network's capacity, shared fairly between tenants (every request holds a slot).
    gate: FairGate,
    /// Notified when a bulk job is confirmed here, so a worker starts it at once.
    bulk_wakeup: Arc<tokio::sync::Notify>,
    /// Single-SIM provisioning calls held to be sent together (sample and hold).
    coalescer: Arc<self::coalesce::Coalescer>,
    /// Notified when a notification was written here, so its deliveries go out at once.
    delivery_wakeup: Arc<tokio::sync::Notify>,
    /// Where webhook endpoints may point.
    webhook_policy: AddressPolicy,
    /// How long a bulk job's row waits for a network that does not answer before it fails.
    network_patience: std::time::Duration,
}

/// Network requests in flight at once unless configured ([`FleetService::with_network_slots`]).
/// About the simulated HLR's default capacity (2,000 transactions per second) times its mean
/// latency (55 ms) with room to spare: enough to keep it busy, little queueing inside it.
pub const DEFAULT_NETWORK_SLOTS: usize = 128;

/// How long a bulk job waits out a silent network unless configured
/// ([`FleetService::with_network_patience`]): ten minutes, longer than an HLR's usual restart or
/// failover, short enough that a job does not hang on a network that is gone for good.
pub const DEFAULT_NETWORK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(600);

/// Label changes: keys to set and keys to remove; `replace` drops every label not set here.
#[derive(Debug, Clone, Default)]
pub struct LabelChange {
    pub set: Vec<(String, String)>,
    pub remove: Vec<String>,
    pub replace: bool,
}

impl LabelChange {
    pub fn apply_to(&self, labels: &Labels) -> Result<Labels> {
        let mut out = if self.replace {
            Labels::new()
        } else {
            labels.clone()
        };
        for k in &self.remove {
            out.remove(&parse_key(k)?);
        }
        for (k, v) in &self.set {
            out.set(k, v)?;
        }
        Ok(out)
    }
}

impl FleetService {
    pub fn new(
        store: Arc<dyn Fleet>,
        jobs: Arc<dyn BulkJobStore>,
        notes: Arc<dyn NotificationStore>,
        cipher: Arc<SecretCipher>,
        reader: Arc<dyn TableReader>,
        notifier: Arc<dyn FleetNotifier>,
        network: Arc<dyn NetworkAdapter>,
    ) -> Self {
        Self {
            store,
            jobs,
            notes,
            cipher,
            reader,
            notifier,
            network,
            gate: FairGate::new(DEFAULT_NETWORK_SLOTS),
            bulk_wakeup: Arc::new(tokio::sync::Notify::new()),
            coalescer: Arc::default(),
            delivery_wakeup: Arc::new(tokio::sync::Notify::new()),
            webhook_policy: AddressPolicy::default(),
            network_patience: DEFAULT_NETWORK_PATIENCE,
        }
    }

    /// Where webhook endpoints may point (https to public addresses unless allowed here).
    pub fn with_webhook_policy(mut self, policy: AddressPolicy) -> Self {
        self.webhook_policy = policy;
        self
    }

    /// How long a bulk job waits out a network that does not answer (each row retried with
    /// growing pauses) before its rows fail as `NO_ANSWER`.
    pub fn with_network_patience(mut self, patience: std::time::Duration) -> Self {
        self.network_patience = patience;
        self
    }

    /// How many network requests may be in flight at once, shared fairly between tenants.
    pub fn with_network_slots(mut self, slots: usize) -> Self {
        self.gate = FairGate::new(slots);
        self
    }

    pub fn gate(&self) -> &FairGate {
        &self.gate
    }

    pub fn store(&self) -> &Arc<dyn Fleet> {
        &self.store
    }

    /// The reader of uploaded tables (imports, bulk files, quota files).
    pub(crate) fn reader(&self) -> &Arc<dyn TableReader> {
        &self.reader
    }

    /// The scope SIM reads run in, after checking the role and, for customer users, the tenant's
    /// setting.
    async fn sim_scope(&self, actor: &Actor) -> Result<Scope> {
        actor.require(Permission::ReadSims, "read SIMs")?;
        if actor.role == Role::CustomerUser {
            let settings = self.store.settings(actor.scope(), actor.tenant_id).await?;
            if !settings.customers_see_sims {
                return Err(Error::Forbidden(
                    "your provider shares device data only; SIMs and their usage are not visible to customers".into(),
                ));
            }
        }
        Ok(actor.scope())
    }

    fn device_scope(&self, actor: &Actor) -> Result<Scope> {
        actor.require(Permission::ReadDevices, "read devices")?;
        Ok(actor.scope())
    }

    pub async fn settings(&self, actor: &Actor, tenant: Option<TenantId>) -> Result<FleetSettings> {
        let tenant = actor.target_tenant(tenant)?;
        self.store.settings(actor.scope(), tenant).await
    }

    pub async fn set_settings(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        settings: FleetSettings,
    ) -> Result<FleetSettings> {
        actor.require(Permission::ManageCustomers, "change what customers see")?;
        let tenant = actor.target_tenant(tenant)?;
        if actor.api_key.is_some() {
            let now = self.store.settings(actor.scope(), tenant).await?;
            if now.require_mfa != settings.require_mfa {
                return Err(Error::Forbidden(
                    "an API key cannot change whether people sign in with a second factor; sign in as a person to do it".into(),
                ));
            }
        }
        self.store.set_settings(actor.scope(), tenant, settings).await?;
        self.visibility_changed(tenant);
        Ok(settings)
    }

    /// Whether the caller sees SIMs at all (customer users may be limited to devices).
    pub async fn sees_sims(&self, actor: &Actor) -> Result<bool> {
        match self.sim_scope(actor).await {
            Ok(_) => Ok(true),
            Err(Error::Forbidden(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn sim(&self, actor: &Actor, iccid: &Iccid) -> Result<Option<Sim>> {
        let scope = self.sim_scope(actor).await?;
        self.store.sim(scope, iccid).await
    }

    async fn sim_for_change(&self, actor: &Actor, iccid: &Iccid) -> Result<Sim> {
        actor.require(Permission::ManageFleet, "change SIMs")?;
        self.store
            .sim(actor.scope(), iccid)
            .await?
            .ok_or_else(|| Error::not_found("SIM", iccid))
    }

    pub async fn sims(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        filter: &SimFilter,
        page: &Page<SimSort>,
    ) -> Result<Vec<Sim>> {
        let scope = self.sim_scope(actor).await?;
        let tenant = actor.target_tenant(tenant)?;
        check_limit(page.limit)?;
        self.check_customer_filter(actor, filter.customer)?;
        self.store.list_sims(scope, tenant, filter, page).await
    }

    /// The keys of these SIMs in a list sorted by the share of their quota used (per mille at
    /// `at`, -1 without a quota), for the cursors of such a list.
    pub async fn sim_quota_keys(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        sims: &[SimId],
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<(SimId, i64)>> {
        let scope = self.sim_scope(actor).await?;
        let tenant = actor.target_tenant(tenant)?;
        self.store.sim_quota_keys(scope, tenant, sims, at).await
    }

    pub async fn count_sims(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        filter: &SimFilter,
    ) -> Result<u64> {
        let scope = self.sim_scope(actor).await?;
        let tenant = actor.target_tenant(tenant)?;
        self.store.count_sims(scope, tenant, filter).await
    }

    pub async fn sims_by_id(&self, actor: &Actor, ids: &[SimId]) -> Result<Vec<Sim>> {
        let scope = self.sim_scope(actor).await?;
        self.store.sims_by_id(scope, ids).await
    }

    /// SIMs bound to these devices; empty for callers who see devices only.
    pub async fn sims_in_devices(&self, actor: &Actor, devices: &[DeviceId]) -> Result<Vec<Sim>> {
        if !self.sees_sims(actor).await? {
            return Ok(Vec::new());
        }
        self.store.sims_in_devices(actor.scope(), devices).await
    }

    pub async fn device(&self, actor: &Actor, id: DeviceId) -> Result<Option<Device>> {
        let scope = self.device_scope(actor)?;
        self.store.device(scope, id).await
    }

    pub async fn devices(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        filter: &DeviceFilter,
        page: &Page<DeviceSort>,
    ) -> Result<Vec<Device>> {
        let scope = self.device_scope(actor)?;
        let tenant = actor.target_tenant(tenant)?;
        check_limit(page.limit)?;
        self.check_customer_filter(actor, filter.customer)?;
        self.store.list_devices(scope, tenant, filter, page).await
    }

    pub async fn count_devices(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        filter: &DeviceFilter,
    ) -> Result<u64> {
        let scope = self.device_scope(actor)?;
        let tenant = actor.target_tenant(tenant)?;
        self.store.count_devices(scope, tenant, filter).await
    }

    pub async fn devices_by_id(&self, actor: &Actor, ids: &[DeviceId]) -> Result<Vec<Device>> {
        let scope = self.device_scope(actor)?;
        self.store.devices_by_id(scope, ids).await
    }

    pub async fn customers_by_id(&self, actor: &Actor, ids: &[CustomerId]) -> Result<Vec<Customer>> {
        actor.require(Permission::ReadCustomers, "read customers")?;
        self.store.customers_by_id(actor.scope(), ids).await
    }

    /// A customer user filtering on another customer would just see nothing; say so instead.
    fn check_customer_filter(&self, actor: &Actor, filter: Option<CustomerFilter>) -> Result<()> {
        match (actor.customer_id, filter) {
            (Some(own), Some(CustomerFilter::Is(c))) if c != own => Err(Error::not_found("customer", c)),
            _ => Ok(()),
        }
    }

    /// The customer to assign to, checked to exist in the tenant.
    async fn customer_in(
        &self,
        actor: &Actor,
        tenant: TenantId,
        customer: Option<CustomerId>,
    ) -> Result<Option<Customer>> {
        let Some(id) = customer else { return Ok(None) };
        let found = self.store.customers_by_id(actor.scope(), &[id]).await?;
        match found.into_iter().next() {
            Some(c) if c.tenant_id == tenant => Ok(Some(c)),
            _ => Err(Error::not_found("customer", id)),
        }
    }

    /// PIN and PUK as the caller may see them: in clear for tenant admins, masked otherwise.
    pub fn sim_secret(&self, actor: &Actor, sim: &Sim, field: &str) -> Result<Option<String>> {
        let sealed = match field {
            "pin" => sim.pin.as_ref(),
            _ => sim.puk.as_ref(),
        };
        let Some(sealed) = sealed else { return Ok(None) };
        let plain = self.cipher.open(sim.iccid.as_str(), field, sealed)?;
        if actor.role.allows(Permission::ReadSimSecrets) && actor.tenant_id == sim.tenant_id {
            Ok(Some(plain))
        } else {
            Ok(Some(mask(plain.len())))
        }
    }

    pub async fn audit(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEntry>> {
        actor.require(Permission::ReadAudit, "read the audit trail")?;
        let tenant = actor.target_tenant(tenant)?;
        check_limit(query.limit)?;
        self.store.audit(actor.scope(), tenant, query).await
    }

    /// Whether `actor` may see SIMs and their usage (customer users only when their tenant shares
    /// them): `FORBIDDEN` saying why otherwise.
    pub async fn require_sims_visible(&self, actor: &Actor) -> Result<()> {
        self.sim_scope(actor).await.map(|_| ())
    }

    /// The history of one SIM or device, newest first. Customer users see the history of what
    /// they can see: where their tenant keeps SIMs from them, a device's history names no SIM.
    pub async fn events(
        &self,
        actor: &Actor,
        tenant: TenantId,
        kind: EntityKind,
        id: Uuid,
        limit: u64,
    ) -> Result<Vec<AuditEntry>> {
        match kind {
            EntityKind::Sim => self.sim_scope(actor).await?,
            EntityKind::Device => self.device_scope(actor)?,
            // A key's history is its managers' (the tenant-wide audit log shows it to staff).
            EntityKind::ApiKey => {
                actor.require(Permission::ManageApiKeys, "read API key history")?;
                actor.scope()
            }
        };
        check_limit(limit)?;
        let query = AuditQuery {
            entity_kind: Some(kind),
            entity_id: Some(id),
            limit,
            ..AuditQuery::default()
        };
        let mut entries = self.store.audit(actor.scope(), tenant, &query).await?;
        if kind == EntityKind::Device && self.sim_scope(actor).await.is_err() {
            for e in &mut entries {
                hide_sims(&mut e.old_value);
                hide_sims(&mut e.new_value);
            }
        }
        Ok(entries)
    }

    pub async fn label_catalogue(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
    ) -> Result<Vec<LabelSuggestion>> {
        actor.require(Permission::ReadDevices, "read labels")?;
        let tenant = actor.target_tenant(tenant)?;
        self.store.label_catalogue(actor.scope(), tenant).await
    }

    pub async fn put_label_suggestion(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        key: &str,
        values: &[String],
        description: Option<&str>,
    ) -> Result<LabelSuggestion> {
        actor.require(Permission::ManageFleet, "change the label catalogue")?;
        let tenant = actor.target_tenant(tenant)?;
        let key = parse_key(key)?;
        let mut vals = Vec::new();
        for v in values {
            let v = parse_value(&key, v)?;
            if !v.is_empty() && !vals.contains(&v) {
                vals.push(v);
            }
        }
        if vals.len() > 200 {
            return Err(Error::invalid("values", "at most 200 suggested values per key"));
        }
        let description = ioto_domain::fleet::audit::parse_note(description)
            .map_err(|_| Error::invalid("description", "must be at most 500 printable characters"))?;
        let s = LabelSuggestion {
            key,
            values: vals,
            description,
        };
        self.store
            .put_label_suggestion(actor.scope(), tenant, s.clone())
            .await?;
        Ok(s)
    }

    pub async fn remove_label_suggestion(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        key: &str,
    ) -> Result<()> {
        actor.require(Permission::ManageFleet, "change the label catalogue")?;
        let tenant = actor.target_tenant(tenant)?;
        self.store
            .remove_label_suggestion(actor.scope(), tenant, key.trim())
            .await
    }

    pub async fn schedules(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        query: &ScheduleQuery,
    ) -> Result<Vec<ScheduledTransition>> {
        let scope = self.sim_scope(actor).await?;
        let tenant = actor.target_tenant(tenant)?;
        check_limit(query.limit)?;
        self.store.schedules(scope, tenant, query).await
    }

    /// Commits a changeset and announces SIM state changes.
    async fn commit(&self, scope: Scope, changes: Changeset) -> Result<Vec<NewAuditEntry>> {
        let effects = changes.audit.clone();
        self.store.apply(scope, changes).await?;
        self.announce(&effects);
        Ok(effects)
    }

    /// Tells open subscriptions of `tenant` that who sees what may have changed.
    pub(crate) fn visibility_changed(&self, tenant: TenantId) {
        self.notifier.publish(FleetEvent::VisibilityChanged(
            ioto_domain::events::VisibilityChanged {
                tenant_id: tenant,
                at: chrono::Utc::now(),
            },
        ));
    }

    /// Publishes a `SimStateChanged` for every SIM entry that moved a state (plain transitions
    /// and both sides of a swap), and a `VisibilityChanged` per tenant where a SIM or device
    /// moved to another sub-customer (an assignment, or a swap handing the old SIM's over).
    fn announce(&self, effects: &[NewAuditEntry]) {
        let mut moved: Vec<TenantId> = effects
            .iter()
            .filter(|e| matches!(e.action, AuditAction::Assigned | AuditAction::Swapped))
            .map(|e| e.tenant_id)
            .collect();
        moved.sort_by_key(|t| t.0);
        moved.dedup();
        for tenant in moved {
            self.visibility_changed(tenant);
        }
        for e in effects.iter().filter(|e| {
            e.entity_kind == EntityKind::Sim
                && matches!(e.action, AuditAction::StateChanged | AuditAction::Swapped)
        }) {
            let parse = |v: &serde_json::Value| {
                v.get("state")
                    .and_then(|s| s.as_str())
                    .and_then(|s| ioto_domain::fleet::SimState::parse(s).ok())
            };
            if let (Some(from), Some(to), Ok(iccid)) = (
                parse(&e.old_value),
                parse(&e.new_value),
                ioto_domain::Iccid::parse(&e.entity_ref),
            ) {
                self.notifier
                    .publish(FleetEvent::SimStateChanged(SimStateChanged {
                        tenant_id: e.tenant_id,
                        customer_id: e.customer_id,
                        sim_id: SimId(e.entity_id),
                        iccid,
                        from,
                        to,
                        actor: e.stamp.actor.clone(),
                        at: e.stamp.at,
                    }));
            }
        }
    }
}

pub(crate) fn check_limit(limit: u64) -> Result<()> {
    // The service asks one row more than a page to learn whether another page follows.
    if limit == 0 || limit > MAX_PAGE + 1 {
        return Err(Error::invalid(
            "first",
            format!("must be between 1 and {MAX_PAGE}"),
        ));
    }
    Ok(())
}

/// An audit entry about a SIM.
pub(crate) fn sim_entry(
    sim: &Sim,
    action: AuditAction,
    stamp: &AuditStamp,
    old: serde_json::Value,
    new: serde_json::Value,
) -> NewAuditEntry {
    NewAuditEntry {
        tenant_id: sim.tenant_id,
        customer_id: sim.customer_id,
        entity_kind: EntityKind::Sim,
        entity_id: sim.id.0,
        entity_ref: sim.iccid.to_string(),
        action,
        stamp: stamp.clone(),
        old_value: old,
        new_value: new,
    }
}

/// An audit entry about a device.
pub(crate) fn device_entry(
    device: &Device,
    action: AuditAction,
    stamp: &AuditStamp,
    old: serde_json::Value,
    new: serde_json::Value,
) -> NewAuditEntry {
    NewAuditEntry {
        tenant_id: device.tenant_id,
        customer_id: device.customer_id,
        entity_kind: EntityKind::Device,
        entity_id: device.id.0,
        entity_ref: device.imei.to_string(),
        action,
        stamp: stamp.clone(),
        old_value: old,
        new_value: new,
    }
}

/// Removes what identifies a SIM from an audit value (bindings name the ICCID).
fn hide_sims(v: &mut serde_json::Value) {
    if let Some(o) = v.as_object_mut() {
        for key in ["iccid", "simId", "imsi", "msisdn"] {
            if o.remove(key).is_some() {
                o.insert(key.to_owned(), json!("(hidden)"));
            }
        }
    }
}

pub(crate) fn opt_json<T: ToString>(v: Option<&T>) -> serde_json::Value {
    v.map_or(serde_json::Value::Null, |x| json!(x.to_string()))
}
