//! Set-based writes: many SIMs or audit entries in few statements. On Postgres the rows travel
//! as one JSON document per chunk (`jsonb_to_recordset`); on SQLite as multi-row inserts.

use ioto_domain::fleet::audit::{AuditAction, AuditStamp, EntityKind, NewAuditEntry};
use ioto_domain::fleet::sim::NewSim;
use ioto_domain::ports::Sighting;
use ioto_domain::{Error, Result};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter, Set,
    Statement,
};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::entities::{audit_event, sim};
use crate::error::{db, map};

/// Rows per Postgres statement (one JSON document each).
const PG_CHUNK: usize = 20_000;
/// Rows per SQLite statement (SQLite allows 32,766 bound values).
const SQLITE_CHUNK: usize = 1_000;

/// A SIM row as Postgres reads it from the JSON document.
#[derive(Serialize)]
struct SimRow<'a> {
    id: Uuid,
    tenant_id: Uuid,
    customer_id: Option<Uuid>,
    iccid: &'a str,
    imsi: &'a str,
    msisdn: Option<&'a str>,
    state: &'static str,
    sim_type: &'static str,
    tariff_plan: Option<&'a str>,
    labels: serde_json::Value,
    pin_sealed: Option<&'a str>,
    puk_sealed: Option<&'a str>,
    activation_code: Option<&'a str>,
}

/// Inserts SIMs created in one batch with their audit entries (`action`, stamped with `stamp`).
pub async fn insert_sims(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    sims: &[(Uuid, NewSim)],
    batch: Uuid,
    action: AuditAction,
    stamp: &AuditStamp,
) -> Result<()> {
    let conflict = "a SIM with one of these ICCIDs, IMSIs or MSISDNs is already registered";
    let now = stamp.at;
    if backend == DbBackend::Postgres {
        for chunk in sims.chunks(PG_CHUNK) {
            let doc: Vec<SimRow<'_>> = chunk
                .iter()
                .map(|(id, s)| SimRow {
                    id: *id,
                    tenant_id: s.tenant_id.0,
                    customer_id: s.customer_id.map(|c| c.0),
                    iccid: s.iccid.as_str(),
                    imsi: s.imsi.as_str(),
                    msisdn: s.msisdn.as_ref().map(|m| m.as_str()),
                    state: s.state.as_str(),
                    sim_type: s.sim_type.as_str(),
                    tariff_plan: s.tariff_plan.as_deref(),
                    labels: s.labels.to_json(),
                    pin_sealed: s.pin.as_ref().map(|p| p.as_stored()),
                    puk_sealed: s.puk.as_ref().map(|p| p.as_stored()),
                    activation_code: s.activation_code.as_deref(),
                })
                .collect();
            let doc = serde_json::to_string(&doc).map_err(|e| Error::Internal(e.to_string()))?;
            // One statement writes the SIMs and, from what it inserted, their audit entries.
            txn.execute(Statement::from_sql_and_values(
                backend,
                "WITH ins AS ( \
                   INSERT INTO sims (id, tenant_id, customer_id, iccid, imsi, msisdn, state, created_at, sim_type, \
                   tariff_plan, labels, pin_sealed, puk_sealed, activation_code, import_id, version, updated_at) \
                   SELECT id, tenant_id, customer_id, iccid, imsi, msisdn, state, $2, sim_type, tariff_plan, labels, \
                   pin_sealed, puk_sealed, activation_code, $3, 1, $2 \
                   FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, tenant_id uuid, customer_id uuid, iccid text, \
                   imsi text, msisdn text, state text, sim_type text, tariff_plan text, labels jsonb, pin_sealed text, \
                   puk_sealed text, activation_code text) \
                   RETURNING id, tenant_id, customer_id, iccid, imsi, msisdn, sim_type, state) \
                 INSERT INTO audit_events (tenant_id, customer_id, entity_kind, entity_id, entity_ref, action, actor, \
                 actor_user_id, at, old_value, new_value, note) \
                 SELECT tenant_id, customer_id, 'SIM', id, iccid, $4, $5, $6, $2, 'null'::jsonb, \
                 jsonb_build_object('iccid', iccid, 'imsi', imsi, 'msisdn', msisdn, 'type', sim_type, 'state', state), $7 \
                 FROM ins",
                [
                    doc.into(),
                    now.into(),
                    batch.into(),
                    action.as_str().into(),
                    stamp.actor.clone().into(),
                    stamp.actor_user_id.map(|u| u.0).into(),
                    stamp.note.clone().into(),
                ],
            ))
            .await
            .map_err(|e| map(e, conflict))?;
        }
        return Ok(());
    }
    for chunk in sims.chunks(SQLITE_CHUNK) {
        let rows = chunk.iter().map(|(id, s)| sim::ActiveModel {
            id: Set(*id),
            tenant_id: Set(s.tenant_id.0),
            customer_id: Set(s.customer_id.map(|c| c.0)),
            iccid: Set(s.iccid.to_string()),
            imsi: Set(s.imsi.to_string()),
            msisdn: Set(s.msisdn.as_ref().map(ToString::to_string)),
            state: Set(s.state.as_str().to_owned()),
            created_at: Set(now),
            sim_type: Set(s.sim_type.as_str().to_owned()),
            tariff_plan: Set(s.tariff_plan.clone()),
            labels: Set(s.labels.to_json()),
            device_id: Set(None),
            pin_sealed: Set(s.pin.as_ref().map(|p| p.as_stored().to_owned())),
            puk_sealed: Set(s.puk.as_ref().map(|p| p.as_stored().to_owned())),
            activation_code: Set(s.activation_code.clone()),
            last_network: Set(None),
            last_activity_at: Set(None),
            import_id: Set(Some(batch)),
            version: Set(1),
            updated_at: Set(now),
        });
        sim::Entity::insert_many(rows)
            .exec_without_returning(txn)
            .await
            .map_err(|e| map(e, conflict))?;
    }
    let audit: Vec<NewAuditEntry> = sims
        .iter()
        .map(|(id, s)| NewAuditEntry {
            tenant_id: s.tenant_id,
            customer_id: s.customer_id,
            entity_kind: EntityKind::Sim,
            entity_id: *id,
            entity_ref: s.iccid.to_string(),
            action,
            stamp: stamp.clone(),
            old_value: serde_json::Value::Null,
            new_value: json!({
                "iccid": s.iccid.as_str(),
                "imsi": s.imsi.as_str(),
                "msisdn": s.msisdn.as_ref().map(|m| m.as_str()),
                "type": s.sim_type.as_str(),
                "state": s.state.as_str(),
            }),
        })
        .collect();
    insert_audit(txn, backend, &audit).await
}

pub async fn insert_audit(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    entries: &[NewAuditEntry],
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    if backend == DbBackend::Postgres {
        for chunk in entries.chunks(PG_CHUNK) {
            let doc: Vec<serde_json::Value> = chunk
                .iter()
                .map(|e| {
                    json!({
                        "tenant_id": e.tenant_id.0,
                        "customer_id": e.customer_id.map(|c| c.0),
                        "entity_kind": e.entity_kind.as_str(),
                        "entity_id": e.entity_id,
                        "entity_ref": e.entity_ref,
                        "action": e.action.as_str(),
                        "actor": e.stamp.actor,
                        "actor_user_id": e.stamp.actor_user_id.map(|u| u.0),
                        "at": e.stamp.at,
                        "old_value": e.old_value,
                        "new_value": e.new_value,
                        "note": e.stamp.note,
                    })
                })
                .collect();
            txn.execute(Statement::from_sql_and_values(
                backend,
                "INSERT INTO audit_events (tenant_id, customer_id, entity_kind, entity_id, entity_ref, action, actor, \
                 actor_user_id, at, old_value, new_value, note) \
                 SELECT tenant_id, customer_id, entity_kind, entity_id, entity_ref, action, actor, actor_user_id, at, \
                 old_value, new_value, note \
                 FROM jsonb_to_recordset($1::jsonb) AS x(tenant_id uuid, customer_id uuid, entity_kind text, \
                 entity_id uuid, entity_ref text, action text, actor text, actor_user_id uuid, at timestamptz, \
                 old_value jsonb, new_value jsonb, note text)",
                [serde_json::Value::Array(doc).to_string().into()],
            ))
            .await
            .map_err(db)?;
        }
        return Ok(());
    }
    for chunk in entries.chunks(SQLITE_CHUNK) {
        let rows = chunk.iter().map(|e| audit_event::ActiveModel {
            id: sea_orm::NotSet,
            tenant_id: Set(e.tenant_id.0),
            customer_id: Set(e.customer_id.map(|c| c.0)),
            entity_kind: Set(e.entity_kind.as_str().to_owned()),
            entity_id: Set(e.entity_id),
            entity_ref: Set(e.entity_ref.clone()),
            action: Set(e.action.as_str().to_owned()),
            actor: Set(e.stamp.actor.clone()),
            actor_user_id: Set(e.stamp.actor_user_id.map(|u| u.0)),
            at: Set(e.stamp.at),
            old_value: Set(Some(e.old_value.clone())),
            new_value: Set(Some(e.new_value.clone())),
            note: Set(e.stamp.note.clone()),
        });
        audit_event::Entity::insert_many(rows)
            .exec_without_returning(txn)
            .await
            .map_err(db)?;
    }
    Ok(())
}

/// A sighting as the Postgres `jsonb_to_recordset` reads it.
#[derive(Serialize)]
struct SightingRow<'a> {
    iccid: &'a str,
    net: String,
    at: chrono::DateTime<chrono::Utc>,
}

/// Sets `last_network` and `last_activity_at` of the SIMs seen, where the sighting is newer.
pub(crate) async fn record_activity(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    seen: &[Sighting],
) -> Result<()> {
    if backend == DbBackend::Postgres {
        for chunk in seen.chunks(PG_CHUNK) {
            let doc: Vec<SightingRow<'_>> = chunk
                .iter()
                .map(|s| SightingRow {
                    iccid: s.iccid.as_str(),
                    net: s.network.to_string(),
                    at: s.at,
                })
                .collect();
            let doc = serde_json::to_string(&doc).map_err(|e| Error::Internal(e.to_string()))?;
            txn.execute(Statement::from_sql_and_values(
                backend,
                "UPDATE sims SET last_network = v.net, last_activity_at = v.at \
                 FROM jsonb_to_recordset($1::jsonb) AS v(iccid text, net text, at timestamptz) \
                 WHERE sims.iccid = v.iccid AND (sims.last_activity_at IS NULL OR sims.last_activity_at < v.at)",
                [doc.into()],
            ))
            .await
            .map_err(db)?;
        }
        return Ok(());
    }
    for s in seen {
        sim::Entity::update_many()
            .col_expr(sim::Column::LastNetwork, Expr::value(s.network.to_string()))
            .col_expr(sim::Column::LastActivityAt, Expr::value(s.at))
            .filter(sim::Column::Iccid.eq(s.iccid.as_str()))
            .filter(
                Condition::any()
                    .add(sim::Column::LastActivityAt.is_null())
                    .add(sim::Column::LastActivityAt.lt(s.at)),
            )
            .exec(txn)
            .await
            .map_err(db)?;
    }
    Ok(())
}
