//! What the analytics layer reads from the fleet: each SIM with its state, tariff plan, labels
//! and device kind, and activations from the audit trail. Runs in the caller's scope (RLS).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ioto_domain::fleet::sim::SimState;
use ioto_domain::ports::analytics::{AnalyticsFleet, FleetCounts, SimFactsRow};
use ioto_domain::{CustomerId, Error, Iccid, Result, Scope, TenantId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseTransaction, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use uuid::Uuid;

use crate::convert::{corrupt, labels};
use crate::entities::{audit_event, device, sim};
use crate::error::db;
use crate::pool::{commit, SqlStore};

#[derive(FromQueryResult)]
struct FactRow {
    iccid: String,
    customer_id: Option<Uuid>,
    state: String,
    tariff_plan: Option<String>,
    labels: serde_json::Value,
    device_id: Option<Uuid>,
}

#[derive(FromQueryResult)]
struct KindRow {
    id: Uuid,
    kind: String,
}

#[derive(FromQueryResult)]
struct StatePlanCount {
    state: String,
    plan: Option<String>,
    n: i64,
}

#[derive(FromQueryResult)]
struct BoundRow {
    iccid: String,
    device_id: Option<Uuid>,
}

/// The kind of each device of the tenant (of one sub-customer when given).
async fn device_kinds(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    customer: Option<CustomerId>,
) -> Result<HashMap<Uuid, String>> {
    let mut devices = device::Entity::find()
        .select_only()
        .columns([device::Column::Id, device::Column::Kind])
        .filter(device::Column::TenantId.eq(tenant.0));
    if let Some(c) = customer {
        devices = devices.filter(device::Column::CustomerId.eq(c.0));
    }
    Ok(devices
        .into_model::<KindRow>()
        .all(txn)
        .await
        .map_err(db)?
        .into_iter()
        .map(|k| (k.id, k.kind))
        .collect())
}

/// What `scope` lets a read of `tenant`'s fleet (narrowed to `customer`) see: `None` when
/// nothing (another tenant's, another sub-customer's), else the sub-customer the read is
/// narrowed to. Postgres answers alike through row-level security; the check keeps SQLite,
/// which has none, from answering more.
fn within(scope: Scope, tenant: TenantId, customer: Option<CustomerId>) -> Option<Option<CustomerId>> {
    match scope {
        Scope::Platform => Some(customer),
        Scope::Tenant { tenant_id, .. } if tenant_id != tenant => None,
        Scope::Tenant {
            customer_id: None, ..
        } => Some(customer),
        Scope::Tenant {
            customer_id: Some(own),
            ..
        } => match customer {
            Some(other) if other != own => None,
            _ => Some(Some(own)),
        },
    }
}

#[async_trait]
impl AnalyticsFleet for SqlStore {
    async fn fleet_counts(
        &self,
        scope: Scope,
        tenant: TenantId,
        customer: Option<CustomerId>,
    ) -> Result<FleetCounts> {
        let Some(customer) = within(scope, tenant, customer) else {
            return Ok(Default::default());
        };
        let txn = self.begin(scope).await?;
        let rows = if self.backend() == DbBackend::Postgres {
            // The counters the fleet's writes keep (migration 0009): a few rows per key.
            let mut sql = String::from(
                "SELECT state, tariff_plan AS plan, sum(n)::bigint AS n FROM sim_count_deltas WHERE tenant_id = $1",
            );
            let mut values: Vec<sea_orm::Value> = vec![tenant.0.into()];
            if let Some(c) = customer {
                sql.push_str(" AND customer_id = $2");
                values.push(c.0.into());
            }
            sql.push_str(" GROUP BY state, tariff_plan HAVING sum(n) <> 0");
            StatePlanCount::find_by_statement(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                values,
            ))
            .all(&txn)
            .await
            .map_err(db)?
        } else {
            // One pass over the tenant's SIMs (no row-level security on the embedded store).
            let mut q = sim::Entity::find()
                .select_only()
                .column_as(sim::Column::State, "state")
                .column_as(sim::Column::TariffPlan, "plan")
                .column_as(sim::Column::Id.count(), "n")
                .filter(sim::Column::TenantId.eq(tenant.0))
                .group_by(sim::Column::State)
                .group_by(sim::Column::TariffPlan);
            if let Some(c) = customer {
                q = q.filter(sim::Column::CustomerId.eq(c.0));
            }
            q.into_model::<StatePlanCount>().all(&txn).await.map_err(db)?
        };
        commit(txn).await?;
        let mut by_state: HashMap<SimState, u64> = HashMap::new();
        let mut by_plan: HashMap<Option<String>, u64> = HashMap::new();
        for r in rows {
            let n =
                u64::try_from(r.n).map_err(|_| Error::Internal(format!("SIM count below zero: {}", r.n)))?;
            let state = SimState::parse(&r.state).map_err(|e| corrupt("sims", "state", e))?;
            *by_state.entry(state).or_default() += n;
            *by_plan.entry(r.plan).or_default() += n;
        }
        let mut out = FleetCounts {
            by_state: by_state.into_iter().collect(),
            by_tariff_plan: by_plan.into_iter().collect(),
        };
        out.by_tariff_plan.sort();
        Ok(out)
    }

    async fn bound_sims(
        &self,
        scope: Scope,
        tenant: TenantId,
        customer: Option<CustomerId>,
    ) -> Result<Vec<(Iccid, String)>> {
        let Some(customer) = within(scope, tenant, customer) else {
            return Ok(Default::default());
        };
        let txn = self.begin(scope).await?;
        let mut sims = sim::Entity::find()
            .select_only()
            .columns([sim::Column::Iccid, sim::Column::DeviceId])
            .filter(sim::Column::TenantId.eq(tenant.0))
            .filter(sim::Column::DeviceId.is_not_null());
        if let Some(c) = customer {
            sims = sims.filter(sim::Column::CustomerId.eq(c.0));
        }
        let rows = sims.into_model::<BoundRow>().all(&txn).await.map_err(db)?;
        if rows.is_empty() {
            commit(txn).await?;
            return Ok(Vec::new());
        }
        let kinds = device_kinds(&txn, tenant, customer).await?;
        commit(txn).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            if let Some(kind) = r.device_id.and_then(|d| kinds.get(&d)) {
                out.push((
                    Iccid::parse(&r.iccid).map_err(|e| corrupt("sims", "iccid", e))?,
                    kind.clone(),
                ));
            }
        }
        Ok(out)
    }

    async fn sim_facts(
        &self,
        scope: Scope,
        tenant: TenantId,
        customer: Option<CustomerId>,
    ) -> Result<Vec<SimFactsRow>> {
        let Some(customer) = within(scope, tenant, customer) else {
            return Ok(Default::default());
        };
        let txn = self.begin(scope).await?;
        let mut sims = sim::Entity::find()
            .select_only()
            .columns([
                sim::Column::Iccid,
                sim::Column::CustomerId,
                sim::Column::State,
                sim::Column::TariffPlan,
                sim::Column::Labels,
                sim::Column::DeviceId,
            ])
            .filter(sim::Column::TenantId.eq(tenant.0));
        if let Some(c) = customer {
            sims = sims.filter(sim::Column::CustomerId.eq(c.0));
        }
        let rows = sims.into_model::<FactRow>().all(&txn).await.map_err(db)?;
        let kinds = device_kinds(&txn, tenant, customer).await?;
        commit(txn).await?;
        rows.into_iter()
            .map(|r| {
                Ok(SimFactsRow {
                    iccid: Iccid::parse(&r.iccid).map_err(|e| corrupt("sims", "iccid", e))?,
                    customer_id: r.customer_id.map(CustomerId),
                    state: SimState::parse(&r.state).map_err(|e| corrupt("sims", "state", e))?,
                    tariff_plan: r.tariff_plan,
                    labels: labels(r.labels).map_err(|e| corrupt("sims", "labels", e))?,
                    device_kind: r.device_id.and_then(|d| kinds.get(&d).cloned()),
                })
            })
            .collect()
    }

    async fn activations(
        &self,
        scope: Scope,
        tenant: TenantId,
        customer: Option<CustomerId>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, u64)>> {
        let Some(customer) = within(scope, tenant, customer) else {
            return Ok(Default::default());
        };
        let txn = self.begin(scope).await?;
        if self.backend() == DbBackend::Postgres {
            // The counters of migration 0009, per 15 minutes (`from` and `to` are midnights of
            // some time zone, so on bucket boundaries).
            let mut sql = String::from(
                "SELECT bucket, sum(n)::bigint AS n FROM sim_activation_counts \
                 WHERE tenant_id = $1 AND bucket >= $2 AND bucket < $3",
            );
            let mut values: Vec<sea_orm::Value> =
                vec![tenant.0.into(), from.timestamp().into(), to.timestamp().into()];
            if let Some(c) = customer {
                sql.push_str(" AND customer_id = $4");
                values.push(c.0.into());
            }
            sql.push_str(" GROUP BY bucket HAVING sum(n) <> 0 ORDER BY bucket");
            let rows = BucketCount::find_by_statement(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                values,
            ))
            .all(&txn)
            .await
            .map_err(db)?;
            commit(txn).await?;
            return rows
                .into_iter()
                .map(|r| {
                    let at = DateTime::from_timestamp(r.bucket, 0).ok_or_else(|| {
                        Error::Internal(format!("stored activation bucket {} is no time", r.bucket))
                    })?;
                    let n = u64::try_from(r.n)
                        .map_err(|_| Error::Internal(format!("activation count below zero: {}", r.n)))?;
                    Ok((at, n))
                })
                .collect();
        }
        let q = audit_event::Entity::find()
            .select_only()
            .column(audit_event::Column::At)
            .filter(audit_event::Column::TenantId.eq(tenant.0))
            .filter(audit_event::Column::EntityKind.eq("SIM"))
            .filter(audit_event::Column::At.gte(from))
            .filter(audit_event::Column::At.lt(to))
            .filter(Expr::cust("json_extract(new_value, '$.state') = 'ACTIVE'"))
            .order_by_asc(audit_event::Column::At);
        let q = match customer {
            Some(c) => q.filter(audit_event::Column::CustomerId.eq(c.0)),
            None => q,
        };
        // The previous state is checked here (a repeated ACTIVE is no activation).
        let rows = q
            .column(audit_event::Column::OldValue)
            .column(audit_event::Column::NewValue)
            .into_model::<StateChangeRow>()
            .all(&txn)
            .await
            .map_err(db)?;
        commit(txn).await?;
        Ok(rows
            .into_iter()
            .filter(|r| {
                state_of(&r.new_value).as_deref() == Some("ACTIVE")
                    && state_of(&r.old_value).as_deref() != Some("ACTIVE")
            })
            .map(|r| (r.at, 1))
            .collect())
    }

    async fn compact_counters(&self) -> Result<u64> {
        if self.backend() != DbBackend::Postgres {
            return Ok(0);
        }
        let txn = self.begin(Scope::Platform).await?;
        let row = Folded::find_by_statement(Statement::from_string(
            DbBackend::Postgres,
            "SELECT ioto_compact_counters() AS folded",
        ))
        .one(&txn)
        .await
        .map_err(db)?;
        commit(txn).await?;
        Ok(row.map_or(0, |r| r.folded.unsigned_abs()))
    }
}

#[derive(FromQueryResult)]
struct BucketCount {
    bucket: i64,
    n: i64,
}

#[derive(FromQueryResult)]
struct Folded {
    folded: i64,
}

#[derive(FromQueryResult)]
struct StateChangeRow {
    at: DateTime<Utc>,
    old_value: Option<serde_json::Value>,
    new_value: Option<serde_json::Value>,
}

/// The `state` of an audit value (stored as JSON, or as JSON text on SQLite).
fn state_of(v: &Option<serde_json::Value>) -> Option<String> {
    let v = match v.as_ref()? {
        serde_json::Value::String(s) => serde_json::from_str(s).ok()?,
        other => other.clone(),
    };
    v.get("state")?.as_str().map(str::to_owned)
}
