//! Coordinated changesets, fleet settings and what every fleet read shares.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ioto_domain::directory::Customer;
use ioto_domain::fleet::device::Device;
use ioto_domain::fleet::schedule::ScheduledTransition;
use ioto_domain::fleet::sim::Sim;
use ioto_domain::fleet::FleetSettings;
use ioto_domain::ports::{Changeset, FleetChanges};
use ioto_domain::{CustomerId, Error, Result, Scope, TenantId};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::*;
use crate::directory::tenant_row;
use crate::entities::{device, scheduled_transition, sim, tenant};
use crate::error::{db, map};
use crate::pool::{admit, commit, commit_or_roll_back, customers_in};

pub(super) fn sim_model(s: &Sim, now: DateTime<Utc>) -> sim::ActiveModel {
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
        // Written only by the activity recorder.
        last_imei: sea_orm::NotSet,
        import_id: sea_orm::NotSet,
        version: Set(s.version + 1),
        updated_at: Set(now),
    }
}

pub(super) fn device_model(d: &Device, version: i64, now: DateTime<Utc>) -> device::ActiveModel {
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

pub(super) fn schedule_model(s: &ScheduledTransition) -> scheduled_transition::ActiveModel {
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

#[async_trait]
impl FleetChanges for SqlFleet {
    async fn settings(&self, scope: Scope, tenant: TenantId) -> Result<FleetSettings> {
        let txn = self.begin(scope).await?;
        let row = tenant_row(&txn, scope, tenant).await?;
        commit(txn).await?;
        Ok(FleetSettings {
            customers_see_sims: row.customers_see_sims,
            customers_see_costs: row.customers_see_costs,
            operator_bulk_limit: u32::try_from(row.operator_bulk_limit).unwrap_or(u32::MAX),
            time_zone: row
                .time_zone
                .parse()
                .map_err(|e| Error::Internal(format!("stored tenant time zone: {e}")))?,
            require_mfa: row.require_mfa,
        })
    }

    async fn set_settings(&self, scope: Scope, tenant: TenantId, settings: FleetSettings) -> Result<()> {
        let txn = self.begin(scope).await?;
        self.write_lock(&txn).await?;
        let row = tenant_row(&txn, scope, tenant).await?;
        let mut active: tenant::ActiveModel = row.into();
        active.customers_see_sims = Set(settings.customers_see_sims);
        active.customers_see_costs = Set(settings.customers_see_costs);
        active.operator_bulk_limit = Set(i64::from(settings.operator_bulk_limit));
        active.time_zone = Set(settings.time_zone.name().to_owned());
        active.require_mfa = Set(settings.require_mfa);
        active.update(&txn).await.map_err(db)?;
        commit(txn).await
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
        let written: Result<()> = async {
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
            bulk::insert_audit(&txn, self.backend(), &changes.audit).await
        }
        .await;
        commit_or_roll_back(txn, written).await
    }

    fn statements(&self) -> u64 {
        self.statement_count()
    }
}
