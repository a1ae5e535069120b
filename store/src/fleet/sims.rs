//! SIMs: reads, bulk creation, assignment and sightings.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ioto_domain::fleet::audit::AuditStamp;
use ioto_domain::fleet::import::TakenIdentifiers;
use ioto_domain::fleet::query::{Page, SimFilter, SimSort};
use ioto_domain::fleet::sim::{NewSim, Sim};
use ioto_domain::fleet::AuditAction;
use ioto_domain::identifiers::Iccid;
use ioto_domain::ports::{Activity, Sighting, SimImeiChange, SimStore};
use ioto_domain::{CustomerId, DeviceId, Result, Scope, SimId, TenantId};
use sea_orm::{
    ColumnTrait, DbBackend, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, Statement,
};
use uuid::Uuid;

use super::assign::*;
use super::*;
use crate::entities::sim;
use crate::error::db;
use crate::pool::{admit, commit, commit_or_roll_back, sims_in};

#[derive(FromQueryResult)]
struct TakenRow {
    kind: String,
    value: String,
}

#[async_trait]
impl SimStore for SqlFleet {
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

    async fn record_activity(&self, seen: &[Sighting]) -> Result<Activity> {
        if seen.is_empty() {
            return Ok(Activity::default());
        }
        let txn = self.begin(Scope::Platform).await?;
        let first = bulk::record_activity(&txn, self.backend(), seen).await?;
        commit(txn).await?;
        Ok(first)
    }

    async fn imei_changes(
        &self,
        tenant: TenantId,
        sims: &[SimId],
        since: DateTime<Utc>,
    ) -> Result<Vec<SimImeiChange>> {
        use crate::entities::sim_imei_change::{self as change, Column as C};
        let mut out = Vec::new();
        for chunk in sims.chunks(1_000) {
            let rows: Vec<SimImeiChange> = self
                .read_all(
                    Scope::tenant(tenant),
                    change::Entity::find()
                        .filter(C::TenantId.eq(tenant.0))
                        .filter(C::SimId.is_in(chunk.iter().map(|s| s.0)))
                        .filter(C::At.gte(since))
                        .order_by_asc(C::At),
                )
                .await?;
            out.extend(rows);
        }
        out.sort_by_key(|c| c.at);
        Ok(out)
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
        let q = filter::sim_page(self.backend(), q, page, Utc::now())?;
        self.read_all(scope, q).await
    }

    async fn sim_quota_keys(
        &self,
        scope: Scope,
        tenant: TenantId,
        sims: &[SimId],
        at: DateTime<Utc>,
    ) -> Result<Vec<(SimId, i64)>> {
        let mut out = Vec::with_capacity(sims.len());
        for chunk in sims.chunks(ID_CHUNK) {
            let q = sims_in(scope)
                .filter(sim::Column::TenantId.eq(tenant.0))
                .filter(sim::Column::Id.is_in(chunk.iter().map(|s| s.0)))
                .select_only()
                .column(sim::Column::Id)
                .expr_as(filter::quota_key(self.backend(), at), "quota_key")
                .into_tuple::<(Uuid, i64)>();
            let rows = if let Some(shared) = crate::session::open(self, scope).await? {
                match q.all(shared.txn()).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        shared.discard().await;
                        return Err(db(e));
                    }
                }
            } else {
                let txn = self.begin(scope).await?;
                let rows = q.all(&txn).await.map_err(db)?;
                commit(txn).await?;
                rows
            };
            out.extend(rows.into_iter().map(|(id, key)| (SimId(id), key)));
        }
        Ok(out)
    }

    async fn count_sims(&self, scope: Scope, tenant: TenantId, f: &SimFilter) -> Result<u64> {
        let q = sims_in(scope).filter(filter::sim_condition(self.backend(), tenant, f));
        let txn = self.begin(scope).await?;
        let n = q.count(&txn).await.map_err(db)?;
        commit(txn).await?;
        Ok(n)
    }

    async fn insert_sims(
        &self,
        scope: Scope,
        sims: &[&NewSim],
        action: AuditAction,
        stamp: &AuditStamp,
        import_id: Option<Uuid>,
    ) -> Result<Vec<SimId>> {
        for s in sims {
            admit(scope, s.tenant_id, s.customer_id)?;
        }
        if sims.is_empty() {
            return Ok(Vec::new());
        }
        // Time-ordered ids: a bulk load appends to the primary-key index instead of splitting
        // pages all over it.
        let rows: Vec<(Uuid, &NewSim)> = sims.iter().map(|s| (Uuid::now_v7(), *s)).collect();
        let batch = import_id.unwrap_or_else(Uuid::new_v4);
        if self.backend() == DbBackend::Postgres {
            bulk::copy_sims(&self.0, scope, &rows, batch, action, stamp).await?;
        } else {
            let txn = self.begin(scope).await?;
            let written = bulk::insert_sims(&txn, &rows, batch, action, stamp).await;
            commit_or_roll_back(txn, written).await?;
        }
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
        let select = moving(sims_in(scope), SIM_COLUMNS, customer)
            .filter(filter::sim_condition(backend, tenant, f))
            .into_query();
        let txn = self.begin(scope).await?;
        let (ids, audit) = move_rows(&txn, backend, Moving::Sims, select, customer, stamp).await?;
        bulk::insert_audit(&txn, backend, &audit).await?;
        commit(txn).await?;
        Ok(ids.len() as u64)
    }
}

impl TryFrom<crate::entities::sim_imei_change::Model> for SimImeiChange {
    type Error = ioto_domain::Error;

    fn try_from(r: crate::entities::sim_imei_change::Model) -> Result<Self> {
        Ok(SimImeiChange {
            sim_id: SimId(r.sim_id),
            at: r.at,
            from: r.from_imei,
            to: r.to_imei,
        })
    }
}
