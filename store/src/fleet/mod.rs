//! The `Fleet` port on sea-orm, for Postgres and SQLite alike.

mod bulk;
pub(crate) mod filter;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ioto_domain::directory::Customer;
use ioto_domain::fleet::audit::{AuditEntry, AuditQuery, AuditStamp, EntityKind, NewAuditEntry};
use ioto_domain::fleet::device::Device;
use ioto_domain::fleet::import::TakenIdentifiers;
use ioto_domain::fleet::labels::LabelSuggestion;
use ioto_domain::fleet::query::{DeviceFilter, DeviceSort, Page, SimFilter, SimSort};
use ioto_domain::fleet::schedule::{ScheduleStatus, ScheduledTransition};
use ioto_domain::fleet::sim::{NewSim, Sim};
use ioto_domain::fleet::{AuditAction, FleetSettings};
use ioto_domain::identifiers::Iccid;
use ioto_domain::ports::{Changeset, Fleet, ScheduleQuery, Sighting};
use ioto_domain::{CustomerId, DeviceId, Error, Result, Scope, SimId, TenantId};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, DbBackend, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set, Statement,
};
use serde_json::json;
use uuid::Uuid;

use crate::convert;
use crate::directory::{admit, commit, customers_in, sims_in, tenant_row};
use crate::entities::{audit_event, device, label_suggestion, scheduled_transition, sim, tenant};
use crate::error::{db, map};
use crate::SqlDirectory;

/// Ids per `IN (…)` list.
const ID_CHUNK: usize = 1_000;

fn devices_in(scope: Scope) -> sea_orm::Select<device::Entity> {
    let mut q = device::Entity::find();
    if let Some(t) = scope.tenant_id() {
        q = q.filter(device::Column::TenantId.eq(t.0));
    }
    if let Some(c) = scope.customer_id() {
        q = q.filter(device::Column::CustomerId.eq(c.0));
    }
    q
}

fn schedules_in(scope: Scope) -> sea_orm::Select<scheduled_transition::Entity> {
    let mut q = scheduled_transition::Entity::find();
    if let Some(t) = scope.tenant_id() {
        q = q.filter(scheduled_transition::Column::TenantId.eq(t.0));
    }
    if let Some(c) = scope.customer_id() {
        q = q.filter(scheduled_transition::Column::CustomerId.eq(c.0));
    }
    q
}

fn sim_model(s: &Sim, now: DateTime<Utc>) -> sim::ActiveModel {
    sim::ActiveModel {
        id: Set(s.id.0),
        tenant_id: Set(s.tenant_id.0),
        customer_id: Set(s.customer_id.map(|c| c.0)),
        iccid: Set(s.iccid.to_string()),
        imsi: Set(s.imsi.to_string()),
        msisdn: Set(s.msisdn.as_ref().map(ToString::to_string)),
        state: Set(s.state.as_str().to_owned()),
        created_at: Set(s.created_at),
        sim_type: Set(s.sim_type.as_str().to_owned()),
        tariff_plan: Set(s.tariff_plan.clone()),
        labels: Set(s.labels.to_json()),
        device_id: Set(s.device_id.map(|d| d.0)),
        pin_sealed: Set(s.pin.as_ref().map(|p| p.as_stored().to_owned())),
        puk_sealed: Set(s.puk.as_ref().map(|p| p.as_stored().to_owned())),
        activation_code: Set(s.activation_code.clone()),
        last_network: Set(s.last_network.as_ref().map(ToString::to_string)),
        last_activity_at: Set(s.last_activity_at),
        import_id: sea_orm::NotSet,
        version: Set(s.version + 1),
        updated_at: Set(now),
    }
}

fn device_model(d: &Device, version: i64, now: DateTime<Utc>) -> device::ActiveModel {
    device::ActiveModel {
        id: Set(d.id.0),
        tenant_id: Set(d.tenant_id.0),
        customer_id: Set(d.customer_id.map(|c| c.0)),
        imei: Set(d.imei.to_string()),
        name: Set(d.name.clone()),
        kind: Set(d.kind.as_str().to_owned()),
        connectivity: Set(d
            .connectivity
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(",")),
        state: Set(d.state.as_str().to_owned()),
        labels: Set(d.labels.to_json()),
        last_activity_at: Set(d.last_activity_at),
        version: Set(version),
        created_at: Set(d.created_at),
        updated_at: Set(now),
    }
}

fn schedule_model(s: &ScheduledTransition) -> scheduled_transition::ActiveModel {
    scheduled_transition::ActiveModel {
        id: Set(s.id),
        tenant_id: Set(s.tenant_id.0),
        customer_id: Set(s.customer_id.map(|c| c.0)),
        sim_id: Set(s.sim_id.0),
        iccid: Set(s.iccid.to_string()),
        target_state: Set(s.target.as_str().to_owned()),
        effective_at: Set(s.effective_at),
        status: Set(s.status.as_str().to_owned()),
        requested_by: Set(s.requested_by.clone()),
        requested_by_user: Set(s.requested_by_user.map(|u| u.0)),
        note: Set(s.note.clone()),
        created_at: Set(s.created_at),
        finished_at: Set(s.finished_at),
        outcome: Set(s.outcome.clone()),
        claimed_until: Set(None),
    }
}

#[derive(FromQueryResult)]
struct TakenRow {
    kind: String,
    value: String,
}

/// A row that changed on assignment: id, reference, tenant and customer before.
#[derive(FromQueryResult)]
struct AssignRow {
    id: Uuid,
    tenant_id: Uuid,
    customer_id: Option<Uuid>,
    reference: String,
}

fn assigned_entry(
    kind: EntityKind,
    r: &AssignRow,
    to: Option<CustomerId>,
    stamp: &AuditStamp,
) -> NewAuditEntry {
    let text = |c: Option<Uuid>| c.map_or(serde_json::Value::Null, |c| json!(c.to_string()));
    NewAuditEntry {
        tenant_id: r.tenant_id.into(),
        customer_id: to,
        entity_kind: kind,
        entity_id: r.id,
        entity_ref: r.reference.clone(),
        action: AuditAction::Assigned,
        stamp: stamp.clone(),
        old_value: json!({ "customerId": text(r.customer_id) }),
        new_value: json!({ "customerId": text(to.map(|c| c.0)) }),
    }
}

/// A tenant outside the scope answers like a missing one (SQLite has no row-level security, so
/// this check is what keeps tenants apart there).
fn tenant_in_scope(scope: Scope, tenant: TenantId) -> Result<()> {
    match scope.tenant_id() {
        Some(t) if t != tenant => Err(Error::not_found("tenant", tenant)),
        _ => Ok(()),
    }
}

/// Updates `customer_id`, `version` and `updated_at` of the rows `ids` of `table`.
async fn set_customer(
    txn: &DatabaseTransaction,
    table: &str,
    ids: &[Uuid],
    customer: Option<CustomerId>,
    now: DateTime<Utc>,
) -> Result<()> {
    for chunk in ids.chunks(ID_CHUNK) {
        match table {
            "sims" => sim::Entity::update_many()
                .col_expr(sim::Column::CustomerId, Expr::value(customer.map(|c| c.0)))
                .col_expr(sim::Column::Version, Expr::col(sim::Column::Version).add(1))
                .col_expr(sim::Column::UpdatedAt, Expr::value(now))
                .filter(sim::Column::Id.is_in(chunk.iter().copied()))
                .exec(txn)
                .await
                .map_err(db)?,
            _ => device::Entity::update_many()
                .col_expr(device::Column::CustomerId, Expr::value(customer.map(|c| c.0)))
                .col_expr(device::Column::Version, Expr::col(device::Column::Version).add(1))
                .col_expr(device::Column::UpdatedAt, Expr::value(now))
                .filter(device::Column::Id.is_in(chunk.iter().copied()))
                .exec(txn)
                .await
                .map_err(db)?,
        };
    }
    Ok(())
}

/// Rows of `select` (SIMs or devices) whose customer differs from `customer`, locked on Postgres.
async fn rows_to_assign(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    mut select: sea_orm::sea_query::SelectStatement,
) -> Result<Vec<AssignRow>> {
    if backend == DbBackend::Postgres {
        select.lock(sea_orm::sea_query::LockType::Update);
    }
    let stmt = backend.build(&select);
    AssignRow::find_by_statement(stmt).all(txn).await.map_err(db)
}

#[async_trait]
impl Fleet for SqlDirectory {
    async fn settings(&self, scope: Scope, tenant: TenantId) -> Result<FleetSettings> {
        let txn = self.begin(scope).await?;
        let row = tenant_row(&txn, scope, tenant).await?;
        commit(txn).await?;
        Ok(FleetSettings {
            customers_see_sims: row.customers_see_sims,
        })
    }

    async fn set_settings(&self, scope: Scope, tenant: TenantId, settings: FleetSettings) -> Result<()> {
        let txn = self.begin(scope).await?;
        let row = tenant_row(&txn, scope, tenant).await?;
        let mut active: tenant::ActiveModel = row.into();
        active.customers_see_sims = Set(settings.customers_see_sims);
        active.update(&txn).await.map_err(db)?;
        commit(txn).await
    }

    async fn sim(&self, scope: Scope, iccid: &Iccid) -> Result<Option<Sim>> {
        self.read_one(
            scope,
            sims_in(scope).filter(sim::Column::Iccid.eq(iccid.as_str())),
        )
        .await
    }

    async fn sims_by_id(&self, scope: Scope, ids: &[SimId]) -> Result<Vec<Sim>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.read_all(
            scope,
            sims_in(scope).filter(sim::Column::Id.is_in(ids.iter().map(|i| i.0))),
        )
        .await
    }

    async fn sims_by_iccid(&self, scope: Scope, iccids: &[Iccid]) -> Result<Vec<Sim>> {
        let mut out = Vec::new();
        for chunk in iccids.chunks(ID_CHUNK) {
            out.extend(
                self.read_all::<_, Sim>(
                    scope,
                    sims_in(scope).filter(sim::Column::Iccid.is_in(chunk.iter().map(Iccid::as_str))),
                )
                .await?,
            );
        }
        Ok(out)
    }

    async fn record_activity(&self, seen: &[Sighting]) -> Result<()> {
        if seen.is_empty() {
            return Ok(());
        }
        let txn = self.begin(Scope::Platform).await?;
        bulk::record_activity(&txn, self.backend(), seen).await?;
        commit(txn).await
    }

    async fn sims_in_devices(&self, scope: Scope, devices: &[DeviceId]) -> Result<Vec<Sim>> {
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        self.read_all(
            scope,
            sims_in(scope)
                .filter(sim::Column::DeviceId.is_in(devices.iter().map(|i| i.0)))
                .order_by_asc(sim::Column::Iccid),
        )
        .await
    }

    async fn list_sims(
        &self,
        scope: Scope,
        tenant: TenantId,
        f: &SimFilter,
        page: &Page<SimSort>,
    ) -> Result<Vec<Sim>> {
        let q = sims_in(scope).filter(filter::sim_condition(self.backend(), tenant, f));
        let q = filter::sim_page(q, page)?;
        self.read_all(scope, q).await
    }

    async fn count_sims(&self, scope: Scope, tenant: TenantId, f: &SimFilter) -> Result<u64> {
        let q = sims_in(scope).filter(filter::sim_condition(self.backend(), tenant, f));
        let txn = self.begin(scope).await?;
        let n = q.count(&txn).await.map_err(db)?;
        commit(txn).await?;
        Ok(n)
    }

    async fn device(&self, scope: Scope, id: DeviceId) -> Result<Option<Device>> {
        self.read_one(scope, devices_in(scope).filter(device::Column::Id.eq(id.0)))
            .await
    }

    async fn devices_by_id(&self, scope: Scope, ids: &[DeviceId]) -> Result<Vec<Device>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.read_all(
            scope,
            devices_in(scope).filter(device::Column::Id.is_in(ids.iter().map(|i| i.0))),
        )
        .await
    }

    async fn list_devices(
        &self,
        scope: Scope,
        tenant: TenantId,
        f: &DeviceFilter,
        page: &Page<DeviceSort>,
    ) -> Result<Vec<Device>> {
        let q = devices_in(scope).filter(filter::device_condition(self.backend(), tenant, f));
        let q = filter::device_page(q, page)?;
        self.read_all(scope, q).await
    }

    async fn count_devices(&self, scope: Scope, tenant: TenantId, f: &DeviceFilter) -> Result<u64> {
        let q = devices_in(scope).filter(filter::device_condition(self.backend(), tenant, f));
        let txn = self.begin(scope).await?;
        let n = q.count(&txn).await.map_err(db)?;
        commit(txn).await?;
        Ok(n)
    }

    async fn customers_by_id(&self, scope: Scope, ids: &[CustomerId]) -> Result<Vec<Customer>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.read_all(
            scope,
            customers_in(scope).filter(crate::entities::customer::Column::Id.is_in(ids.iter().map(|i| i.0))),
        )
        .await
    }

    async fn apply(&self, scope: Scope, changes: Changeset) -> Result<()> {
        let now = Utc::now();
        let txn = self.begin(scope).await?;
        for d in &changes.devices {
            admit(scope, d.row.tenant_id, d.row.customer_id)?;
            match d.expected_version {
                None => {
                    device_model(&d.row, 1, now).insert(&txn).await.map_err(|e| {
                        map(
                            e,
                            &format!("a device with IMEI {} already exists in this tenant", d.row.imei),
                        )
                    })?;
                }
                Some(v) => {
                    let res = device::Entity::update_many()
                        .set(device_model(&d.row, v + 1, now))
                        .filter(device::Column::Id.eq(d.row.id.0))
                        .filter(device::Column::Version.eq(v))
                        .exec(&txn)
                        .await
                        .map_err(db)?;
                    if res.rows_affected != 1 {
                        return Err(Error::Conflict(format!(
                            "device {} was changed by someone else meanwhile (you had version {v}); reload and try again",
                            d.row.id
                        )));
                    }
                }
            }
        }
        for s in &changes.sims {
            admit(scope, s.row.tenant_id, s.row.customer_id)?;
            let v = s
                .expected_version
                .ok_or_else(|| Error::Internal("SIMs are created with insert_sims, not apply".into()))?;
            let mut row = s.row.clone();
            row.version = v;
            let res = sim::Entity::update_many()
                .set(sim_model(&row, now))
                .filter(sim::Column::Id.eq(row.id.0))
                .filter(sim::Column::Version.eq(v))
                .exec(&txn)
                .await
                .map_err(|e| {
                    map(
                        e,
                        &format!(
                            "MSISDN {} is already in use by another SIM",
                            row.msisdn.as_ref().map_or("", |m| m.as_str())
                        ),
                    )
                })?;
            if res.rows_affected != 1 {
                return Err(Error::Conflict(format!(
                    "SIM {} was changed by someone else meanwhile (you had version {v}); reload and try again",
                    row.iccid
                )));
            }
        }
        for s in &changes.schedules {
            let model = schedule_model(s);
            scheduled_transition::Entity::insert(model)
                .on_conflict(
                    OnConflict::column(scheduled_transition::Column::Id)
                        .update_columns([
                            scheduled_transition::Column::Status,
                            scheduled_transition::Column::FinishedAt,
                            scheduled_transition::Column::Outcome,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await
                .map_err(db)?;
        }
        bulk::insert_audit(&txn, self.backend(), &changes.audit).await?;
        commit(txn).await
    }

    async fn insert_sims(
        &self,
        scope: Scope,
        sims: Vec<NewSim>,
        action: AuditAction,
        stamp: &AuditStamp,
        import_id: Option<Uuid>,
    ) -> Result<Vec<SimId>> {
        for s in &sims {
            admit(scope, s.tenant_id, s.customer_id)?;
        }
        // Time-ordered ids: a bulk load appends to the primary-key index instead of splitting
        // pages all over it.
        let rows: Vec<(Uuid, NewSim)> = sims.into_iter().map(|s| (Uuid::now_v7(), s)).collect();
        let batch = import_id.unwrap_or_else(Uuid::new_v4);
        let txn = self.begin(scope).await?;
        bulk::insert_sims(&txn, self.backend(), &rows, batch, action, stamp).await?;
        commit(txn).await?;
        Ok(rows.into_iter().map(|(id, _)| SimId(id)).collect())
    }

    async fn taken_identifiers(
        &self,
        iccids: &[String],
        imsis: &[String],
        msisdns: &[String],
    ) -> Result<TakenIdentifiers> {
        let mut out = TakenIdentifiers::default();
        if iccids.is_empty() && imsis.is_empty() && msisdns.is_empty() {
            return Ok(out);
        }
        let rows = if self.backend() == DbBackend::Postgres {
            // Values are digits and '+' only (parsed identifiers), so ',' separates them safely.
            let txn = self.begin(Scope::tenant(TenantId(Uuid::nil()))).await?;
            let rows = TakenRow::find_by_statement(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT kind, value FROM ioto_taken_identifiers($1, $2, $3)",
                [
                    iccids.join(",").into(),
                    imsis.join(",").into(),
                    msisdns.join(",").into(),
                ],
            ))
            .all(&txn)
            .await
            .map_err(db)?;
            commit(txn).await?;
            rows
        } else {
            let mut rows = Vec::new();
            for (kind, col, values) in [
                ("iccid", sim::Column::Iccid, iccids),
                ("imsi", sim::Column::Imsi, imsis),
                ("msisdn", sim::Column::Msisdn, msisdns),
            ] {
                for chunk in values.chunks(ID_CHUNK) {
                    let found: Vec<Option<String>> = sim::Entity::find()
                        .select_only()
                        .column(col)
                        .filter(col.is_in(chunk.iter().cloned()))
                        .into_tuple()
                        .all(&self.db)
                        .await
                        .map_err(db)?;
                    rows.extend(found.into_iter().flatten().map(|value| TakenRow {
                        kind: kind.to_owned(),
                        value,
                    }));
                }
            }
            rows
        };
        for r in rows {
            match r.kind.as_str() {
                "iccid" => out.iccids.insert(r.value),
                "imsi" => out.imsis.insert(r.value),
                _ => out.msisdns.insert(r.value),
            };
        }
        Ok(out)
    }

    async fn assign_sims(
        &self,
        scope: Scope,
        tenant: TenantId,
        f: &SimFilter,
        customer: Option<CustomerId>,
        stamp: &AuditStamp,
    ) -> Result<u64> {
        admit(scope, tenant, customer)?;
        let backend = self.backend();
        let differs = match customer {
            Some(c) => sea_orm::Condition::any()
                .add(sim::Column::CustomerId.ne(c.0))
                .add(sim::Column::CustomerId.is_null()),
            None => sea_orm::Condition::all().add(sim::Column::CustomerId.is_not_null()),
        };
        let select = sims_in(scope)
            .select_only()
            .column(sim::Column::Id)
            .column(sim::Column::TenantId)
            .column(sim::Column::CustomerId)
            .column_as(sim::Column::Iccid, "reference")
            .filter(filter::sim_condition(backend, tenant, f))
            .filter(differs)
            .into_query();
        let txn = self.begin(scope).await?;
        let rows = rows_to_assign(&txn, backend, select).await?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        set_customer(&txn, "sims", &ids, customer, stamp.at).await?;
        let audit: Vec<NewAuditEntry> = rows
            .iter()
            .map(|r| assigned_entry(EntityKind::Sim, r, customer, stamp))
            .collect();
        bulk::insert_audit(&txn, backend, &audit).await?;
        commit(txn).await?;
        Ok(ids.len() as u64)
    }

    async fn assign_devices(
        &self,
        scope: Scope,
        tenant: TenantId,
        f: &DeviceFilter,
        customer: Option<CustomerId>,
        stamp: &AuditStamp,
    ) -> Result<u64> {
        admit(scope, tenant, customer)?;
        let backend = self.backend();
        let differs = match customer {
            Some(c) => sea_orm::Condition::any()
                .add(device::Column::CustomerId.ne(c.0))
                .add(device::Column::CustomerId.is_null()),
            None => sea_orm::Condition::all().add(device::Column::CustomerId.is_not_null()),
        };
        let select = devices_in(scope)
            .select_only()
            .column(device::Column::Id)
            .column(device::Column::TenantId)
            .column(device::Column::CustomerId)
            .column_as(device::Column::Imei, "reference")
            .filter(filter::device_condition(backend, tenant, f))
            .filter(differs)
            .into_query();
        let txn = self.begin(scope).await?;
        let devices = rows_to_assign(&txn, backend, select).await?;
        let device_ids: Vec<Uuid> = devices.iter().map(|r| r.id).collect();
        set_customer(&txn, "devices", &device_ids, customer, stamp.at).await?;
        let mut audit: Vec<NewAuditEntry> = devices
            .iter()
            .map(|r| assigned_entry(EntityKind::Device, r, customer, stamp))
            .collect();
        // The SIMs in those devices follow them.
        let sim_differs = match customer {
            Some(c) => sea_orm::Condition::any()
                .add(sim::Column::CustomerId.ne(c.0))
                .add(sim::Column::CustomerId.is_null()),
            None => sea_orm::Condition::all().add(sim::Column::CustomerId.is_not_null()),
        };
        for chunk in device_ids.chunks(ID_CHUNK) {
            let select = sims_in(scope)
                .select_only()
                .column(sim::Column::Id)
                .column(sim::Column::TenantId)
                .column(sim::Column::CustomerId)
                .column_as(sim::Column::Iccid, "reference")
                .filter(sim::Column::DeviceId.is_in(chunk.iter().copied()))
                .filter(sim_differs.clone())
                .into_query();
            let sims = rows_to_assign(&txn, backend, select).await?;
            let ids: Vec<Uuid> = sims.iter().map(|r| r.id).collect();
            set_customer(&txn, "sims", &ids, customer, stamp.at).await?;
            audit.extend(
                sims.iter()
                    .map(|r| assigned_entry(EntityKind::Sim, r, customer, stamp)),
            );
        }
        bulk::insert_audit(&txn, backend, &audit).await?;
        commit(txn).await?;
        Ok(device_ids.len() as u64)
    }

    async fn audit(&self, scope: Scope, tenant: TenantId, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        if tenant_in_scope(scope, tenant).is_err() {
            return Ok(Vec::new());
        }
        let mut q = audit_event::Entity::find().filter(audit_event::Column::TenantId.eq(tenant.0));
        if let Some(c) = scope.customer_id() {
            q = q.filter(audit_event::Column::CustomerId.eq(c.0));
        }
        if let Some(k) = query.entity_kind {
            q = q.filter(audit_event::Column::EntityKind.eq(k.as_str()));
        }
        if let Some(id) = query.entity_id {
            q = q.filter(audit_event::Column::EntityId.eq(id));
        }
        if !query.actions.is_empty() {
            q = q.filter(audit_event::Column::Action.is_in(query.actions.iter().map(|a| a.as_str())));
        }
        if let Some(a) = &query.actor {
            q = q.filter(audit_event::Column::Actor.eq(a.as_str()));
        }
        if let Some(f) = query.from {
            q = q.filter(audit_event::Column::At.gte(f));
        }
        if let Some(t) = query.to {
            q = q.filter(audit_event::Column::At.lt(t));
        }
        if let Some(b) = query.before {
            q = q.filter(audit_event::Column::Id.lt(b));
        }
        let q = q.order_by_desc(audit_event::Column::Id).limit(query.limit);
        self.read_all(scope, q).await
    }

    async fn label_catalogue(&self, scope: Scope, tenant: TenantId) -> Result<Vec<LabelSuggestion>> {
        if tenant_in_scope(scope, tenant).is_err() {
            return Ok(Vec::new());
        }
        self.read_all(
            scope,
            label_suggestion::Entity::find()
                .filter(label_suggestion::Column::TenantId.eq(tenant.0))
                .order_by_asc(label_suggestion::Column::Key),
        )
        .await
    }

    async fn put_label_suggestion(&self, scope: Scope, tenant: TenantId, s: LabelSuggestion) -> Result<()> {
        admit(scope, tenant, None)?;
        let txn = self.begin(scope).await?;
        tenant_row(&txn, scope, tenant).await?;
        let model = label_suggestion::ActiveModel {
            tenant_id: Set(tenant.0),
            key: Set(s.key.clone()),
            suggested: Set(json!(s.values)),
            description: Set(s.description.clone()),
        };
        label_suggestion::Entity::insert(model)
            .on_conflict(
                OnConflict::columns([label_suggestion::Column::TenantId, label_suggestion::Column::Key])
                    .update_columns([
                        label_suggestion::Column::Suggested,
                        label_suggestion::Column::Description,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await
            .map_err(db)?;
        commit(txn).await
    }

    async fn remove_label_suggestion(&self, scope: Scope, tenant: TenantId, key: &str) -> Result<()> {
        admit(scope, tenant, None)?;
        let txn = self.begin(scope).await?;
        let res = label_suggestion::Entity::delete_many()
            .filter(label_suggestion::Column::TenantId.eq(tenant.0))
            .filter(label_suggestion::Column::Key.eq(key))
            .exec(&txn)
            .await
            .map_err(db)?;
        if res.rows_affected == 0 {
            return Err(Error::not_found("label key", key));
        }
        commit(txn).await
    }

    async fn schedules(
        &self,
        scope: Scope,
        tenant: TenantId,
        query: &ScheduleQuery,
    ) -> Result<Vec<ScheduledTransition>> {
        let mut q = schedules_in(scope).filter(scheduled_transition::Column::TenantId.eq(tenant.0));
        if let Some(s) = query.sim {
            q = q.filter(scheduled_transition::Column::SimId.eq(s.0));
        }
        if !query.statuses.is_empty() {
            q = q.filter(
                scheduled_transition::Column::Status.is_in(query.statuses.iter().map(|s| s.as_str())),
            );
        }
        let q = q
            .order_by_asc(scheduled_transition::Column::EffectiveAt)
            .order_by_asc(scheduled_transition::Column::Id)
            .limit(query.limit);
        self.read_all(scope, q).await
    }

    async fn schedule(&self, scope: Scope, id: Uuid) -> Result<Option<ScheduledTransition>> {
        self.read_one(
            scope,
            schedules_in(scope).filter(scheduled_transition::Column::Id.eq(id)),
        )
        .await
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u64,
    ) -> Result<Vec<ScheduledTransition>> {
        let lease = chrono::Duration::from_std(lease).map_err(|e| Error::Internal(e.to_string()))?;
        let backend = self.backend();
        let txn = self.begin(Scope::Platform).await?;
        let mut select = scheduled_transition::Entity::find()
            .filter(scheduled_transition::Column::Status.eq(ScheduleStatus::Pending.as_str()))
            .filter(scheduled_transition::Column::EffectiveAt.lte(now))
            .filter(
                sea_orm::Condition::any()
                    .add(scheduled_transition::Column::ClaimedUntil.is_null())
                    .add(scheduled_transition::Column::ClaimedUntil.lt(now)),
            )
            .order_by_asc(scheduled_transition::Column::EffectiveAt)
            .limit(limit)
            .into_query();
        if backend == DbBackend::Postgres {
            select.lock_with_behavior(
                sea_orm::sea_query::LockType::Update,
                sea_orm::sea_query::LockBehavior::SkipLocked,
            );
        }
        let rows = scheduled_transition::Model::find_by_statement(backend.build(&select))
            .all(&txn)
            .await
            .map_err(db)?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        if !ids.is_empty() {
            scheduled_transition::Entity::update_many()
                .col_expr(
                    scheduled_transition::Column::ClaimedUntil,
                    Expr::value(now + lease),
                )
                .filter(scheduled_transition::Column::Id.is_in(ids))
                .exec(&txn)
                .await
                .map_err(db)?;
        }
        commit(txn).await?;
        convert::all(rows)
    }

    async fn finish_schedule(&self, id: Uuid, status: ScheduleStatus, outcome: Option<String>) -> Result<()> {
        let txn = self.begin(Scope::Platform).await?;
        scheduled_transition::Entity::update_many()
            .col_expr(scheduled_transition::Column::Status, Expr::value(status.as_str()))
            .col_expr(scheduled_transition::Column::Outcome, Expr::value(outcome))
            .col_expr(scheduled_transition::Column::FinishedAt, Expr::value(Utc::now()))
            .filter(scheduled_transition::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(db)?;
        commit(txn).await
    }

    fn statements(&self) -> u64 {
        self.statement_count()
    }
}
