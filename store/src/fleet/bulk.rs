//! Set-based writes: many SIMs or audit entries in few statements. On Postgres new SIMs travel by
//! `COPY` into a temporary table, bulk job rows as one text parameter per column and chunk (split
//! by `string_to_array`, joined by `unnest`), other rows as one JSON document per chunk
//! (`jsonb_to_recordset`); on SQLite as multi-row inserts.

use ioto_domain::fleet::audit::{AuditAction, AuditStamp, EntityKind, NewAuditEntry};
use ioto_domain::fleet::sim::NewSim;
use ioto_domain::identifiers::Iccid;
use ioto_domain::ports::{Activity, ImeiChange, Sighting};
use ioto_domain::{Error, Result, Scope};
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::sqlx;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter, Set, Statement,
};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::entities::{audit_event, sim, sim_imei_change};
use crate::error::{db, map, sqlx_err};
use crate::SqlStore;

/// Rows per Postgres statement (one JSON document or text parameter per column each) or `COPY`
/// message.
pub(crate) const PG_CHUNK: usize = 20_000;
/// Rows per SQLite statement (SQLite allows 32,766 bound values).
const SQLITE_CHUNK: usize = 1_000;

/// Separates the values of a column sent as one text parameter; the server splits it again with
/// `string_to_array($n, E'\x1f', '')` (an empty value becomes NULL). Splitting text costs the
/// server less than parsing the same rows as JSON (about 90 against 230 ms per 20,000 rows in
/// psql, sending included; a small part of the insert itself) and the client no JSON encoding. No stored value
/// holds the separator:
/// identifiers are digits, free text is checked printable, JSON escapes control characters —
/// and [`Columns::row`] refuses one that does, naming the field.
pub(crate) const SEP: char = '\u{1f}';

/// `sims.iccid IN (…)`; on Postgres one text parameter split by the server (`= ANY`): thousands
/// of bound values cost more to send and plan than the lookup itself, and a generic plan searches
/// such a list row by row (5,000 ICCIDs against 100,000 SIMs: 1.4 s instead of milliseconds).
pub(crate) fn iccid_among(backend: DbBackend, iccids: &[Iccid]) -> SimpleExpr {
    if backend == DbBackend::Postgres {
        Expr::cust_with_values(
            "sims.iccid = ANY(string_to_array($1, E'\\x1f'))",
            [text_column(iccids.iter().map(|i| Some(i.as_str())))],
        )
    } else {
        sim::Column::Iccid.is_in(iccids.iter().map(Iccid::as_str))
    }
}

/// Values as one text parameter, joined by [`SEP`] (split again by `string_to_array`): control
/// characters in free text become spaces, so none is the separator; `None` is the empty string
/// (NULL again on the server).
pub(crate) fn text_column<S: AsRef<str>>(values: impl Iterator<Item = Option<S>>) -> String {
    let mut out = String::new();
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        if let Some(v) = v {
            out.extend(v.as_ref().chars().map(|c| if c.is_control() { ' ' } else { c }));
        }
    }
    out
}

/// Rows as one text parameter per column.
pub(crate) struct Columns<const N: usize> {
    names: [&'static str; N],
    values: [String; N],
    rows: usize,
}

impl<const N: usize> Columns<N> {
    pub(crate) fn new(names: [&'static str; N]) -> Self {
        Self {
            names,
            values: std::array::from_fn(|_| String::new()),
            rows: 0,
        }
    }

    pub(crate) fn row(&mut self, row: [Option<&str>; N]) -> Result<()> {
        for ((value, column), name) in row.iter().zip(&mut self.values).zip(self.names) {
            if self.rows > 0 {
                column.push(SEP);
            }
            if let Some(v) = value {
                if v.contains(SEP) || v.is_empty() {
                    return Err(Error::invalid(
                        name,
                        "must not be empty or hold control characters",
                    ));
                }
                column.push_str(v);
            }
        }
        self.rows += 1;
        Ok(())
    }

    pub(crate) fn params(self) -> Vec<sea_orm::Value> {
        self.values.into_iter().map(Into::into).collect()
    }
}

/// New SIMs first go to a temporary table by `COPY` (no row-level security there, no index, no
/// WAL): `COPY` into a table may not hold rows to a policy, so the rows stay there until
/// [`MOVE_SIMS_SQL`] inserts them under the caller's scope. Measured against one
/// `unnest(string_to_array(…))` statement per 20,000 SIMs: −20 % backend CPU for the
/// statements; imports of 100,000 SIMs 0.7 s faster at the median. The `COPY` runs in the
/// caller: in a task of its own fed through a channel, the same import took 0.3–0.86 s longer at
/// the median (runs alternated; `ioto-bench fleet`).
/// Dropped with the transaction, whether it commits or not.
const STAGE_SIMS_SQL: &str = "CREATE TEMPORARY TABLE import_sims (id uuid NOT NULL, \
 tenant_id uuid NOT NULL, customer_id uuid, iccid text COLLATE \"C\" NOT NULL, \
 imsi text COLLATE \"C\" NOT NULL, msisdn text COLLATE \"C\", state text NOT NULL, \
 sim_type text NOT NULL, tariff_plan text, labels jsonb NOT NULL, pin_sealed text, \
 puk_sealed text, activation_code text) ON COMMIT DROP";

const COPY_SIMS_SQL: &str = "COPY import_sims FROM STDIN";

/// One statement moves the staged SIMs and writes, from the same rows, their audit entries. Not
/// from the SIM insert's `RETURNING`, which cost 0.13–0.4 s more backend CPU per
/// 100,000 SIMs (docs/benchmarks.md): returning the rows themselves (~0.33 s with the
/// policies off) and holding each returned row to the policy's read check, a PL/pgSQL
/// call per SIM. The write check already holds the SIMs to the caller's tenant. Both fail or
/// land together.
const MOVE_SIMS_SQL: &str = "WITH ins AS ( \
   INSERT INTO sims (id, tenant_id, customer_id, iccid, imsi, msisdn, state, created_at, sim_type, \
   tariff_plan, labels, pin_sealed, puk_sealed, activation_code, import_id, version, updated_at) \
   SELECT id, tenant_id, customer_id, iccid, imsi, msisdn, state, $1, sim_type, tariff_plan, labels, \
   pin_sealed, puk_sealed, activation_code, $2, 1, $1 FROM import_sims) \
 INSERT INTO audit_events (tenant_id, customer_id, entity_kind, entity_id, entity_ref, action, actor, \
 actor_user_id, at, old_value, new_value, note) \
 SELECT tenant_id, customer_id, 'SIM', id, iccid, $3, $4, $5, $1, 'null'::jsonb, \
 jsonb_build_object('iccid', iccid, 'imsi', imsi, 'msisdn', msisdn, 'type', sim_type, 'state', state), $6 \
 FROM import_sims";

/// Appends one field of a `COPY … FROM STDIN` text row: `\N` for none; backslash, tab, newline
/// and carriage return escaped (free text and JSON may hold a backslash).
fn copy_field(out: &mut String, value: Option<&str>) {
    let Some(v) = value else {
        out.push_str("\\N");
        return;
    };
    if !v.contains(['\\', '\t', '\n', '\r']) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// A chunk of new SIMs as `COPY` text rows in the column order of `import_sims`.
fn copy_rows(chunk: &[(Uuid, &NewSim)]) -> String {
    let mut out = String::with_capacity(chunk.len() * 320);
    let mut ids = Uuid::encode_buffer();
    for (id, s) in chunk {
        let customer = s.customer_id.map(|c| c.0.to_string());
        let labels = s.labels.to_json().to_string();
        let fields = [
            Some(&*id.hyphenated().encode_lower(&mut ids)),
            Some(&s.tenant_id.0.to_string()),
            customer.as_deref(),
            Some(s.iccid.as_str()),
            Some(s.imsi.as_str()),
            s.msisdn.as_ref().map(|m| m.as_str()),
            Some(s.state.as_str()),
            Some(s.sim_type.as_str()),
            s.tariff_plan.as_deref(),
            Some(&labels),
            s.pin.as_ref().map(|p| p.as_stored()),
            s.puk.as_ref().map(|p| p.as_stored()),
            s.activation_code.as_deref(),
        ];
        for (i, field) in fields.into_iter().enumerate() {
            if i > 0 {
                out.push('\t');
            }
            copy_field(&mut out, field);
        }
        out.push('\n');
    }
    out
}

/// Inserts SIMs created in one batch with their audit entries (`action`, stamped with `stamp`) on
/// Postgres, in one transaction of its own in `scope`: staged by `COPY`, moved by one statement.
/// Its connection is closed unless the transaction ends here ([`crate::pool::CopyConnection`]):
/// a caller dropped halfway writes nothing and leaves no unread reply in the pool.
pub async fn copy_sims(
    store: &SqlStore,
    scope: Scope,
    sims: &[(Uuid, &NewSim)],
    batch: Uuid,
    action: AuditAction,
    stamp: &AuditStamp,
) -> Result<()> {
    let failed = |e| map(sqlx_err(e), CONFLICT);
    let mut conn = store.postgres_connection().await?;
    let mut txn = store.begin_postgres(&mut conn, scope).await?;
    store.count_statements(1);
    sqlx::query(STAGE_SIMS_SQL)
        .execute(&mut *txn)
        .await
        .map_err(failed)?;
    store.count_statements(1);
    let mut copy = txn.copy_in_raw(COPY_SIMS_SQL).await.map_err(failed)?;
    // Postgres parses and stores a chunk while the next one is built.
    for chunk in sims.chunks(PG_CHUNK) {
        copy.send(copy_rows(chunk).into_bytes()).await.map_err(failed)?;
    }
    copy.finish().await.map_err(failed)?;
    store.count_statements(1);
    sqlx::query(MOVE_SIMS_SQL)
        .bind(stamp.at)
        .bind(batch)
        .bind(action.as_str())
        .bind(&stamp.actor)
        .bind(stamp.actor_user_id.map(|u| u.0))
        .bind(&stamp.note)
        .execute(&mut *txn)
        .await
        .map_err(failed)?;
    txn.commit().await.map_err(failed)?;
    conn.release();
    Ok(())
}

const CONFLICT: &str = "a SIM with one of these ICCIDs, IMSIs or MSISDNs is already registered";

/// Inserts SIMs created in one batch with their audit entries (`action`, stamped with `stamp`) on
/// SQLite, in `txn` (Postgres: [`copy_sims`]).
pub async fn insert_sims(
    txn: &DatabaseTransaction,
    sims: &[(Uuid, &NewSim)],
    batch: Uuid,
    action: AuditAction,
    stamp: &AuditStamp,
) -> Result<()> {
    let now = stamp.at;
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
            last_imei: Set(None),
            import_id: Set(Some(batch)),
            version: Set(1),
            updated_at: Set(now),
        });
        sim::Entity::insert_many(rows)
            .exec_without_returning(txn)
            .await
            .map_err(|e| map(e, CONFLICT))?;
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
    insert_audit(txn, DbBackend::Sqlite, &audit).await
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
    imei: Option<&'a str>,
}

/// The sighting's IMEI when it is one (15 digits); anything else a caller passes is not written
/// (the column refuses it).
fn imei_of(s: &Sighting) -> Option<&str> {
    s.imei
        .as_deref()
        .filter(|i| i.len() == 15 && i.bytes().all(|b| b.is_ascii_digit()))
}

/// Sets `last_network`, `last_activity_at` and (when the sighting has one) `last_imei` of the
/// SIMs seen, where the sighting is newer. Returns the SIMs never seen before and those seen
/// with another IMEI than their last.
pub(crate) async fn record_activity(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    seen: &[Sighting],
) -> Result<Activity> {
    let mut out = Activity::default();
    // The changes of device, kept for the anomaly pass (`sim_imei_changes`).
    let mut moved: Vec<sim_imei_change::ActiveModel> = Vec::new();
    let mut changed =
        |(tenant, sim): (Uuid, Uuid), iccid: &str, before: Option<String>, imei: Option<String>, at| {
            if let (Some(from), Some(to)) = (before, imei) {
                if from != to {
                    moved.push(sim_imei_change::ActiveModel {
                        id: Set(Uuid::new_v4()),
                        tenant_id: Set(tenant),
                        sim_id: Set(sim),
                        at: Set(at),
                        from_imei: Set(from.clone()),
                        to_imei: Set(to.clone()),
                    });
                    if let Ok(i) = ioto_domain::Iccid::parse(iccid) {
                        out.imei_changes.push(ImeiChange {
                            iccid: i,
                            from,
                            to,
                            at,
                        });
                    }
                }
            }
        };

    if backend == DbBackend::Postgres {
        let mut first = Vec::new();
        for chunk in seen.chunks(PG_CHUNK) {
            let doc: Vec<SightingRow<'_>> = chunk
                .iter()
                .map(|s| SightingRow {
                    iccid: s.iccid.as_str(),
                    net: s.network.to_string(),
                    at: s.at,
                    imei: imei_of(s),
                })
                .collect();
            let doc = serde_json::to_string(&doc).map_err(|e| Error::Internal(e.to_string()))?;
            // `before` is the row as the statement found it: whether it had been seen at all,
            // and with which IMEI.
            let rows = txn
                .query_all(Statement::from_sql_and_values(
                    backend,
                    "UPDATE sims SET last_network = v.net, last_activity_at = v.at, \
                            last_imei = coalesce(v.imei, sims.last_imei) \
                     FROM jsonb_to_recordset($1::jsonb) AS v(iccid text, net text, at timestamptz, imei text), \
                          sims AS before \
                     WHERE sims.iccid = v.iccid AND before.id = sims.id \
                       AND (sims.last_activity_at IS NULL OR sims.last_activity_at < v.at) \
                     RETURNING sims.iccid, sims.id, sims.tenant_id, before.last_activity_at IS NULL AS first, \
                               before.last_imei AS before_imei, v.imei AS imei, v.at AS at",
                    [doc.into()],
                ))
                .await
                .map_err(db)?;
            for r in rows {
                let iccid: String = r.try_get("", "iccid").map_err(db)?;
                let is_first: bool = r.try_get("", "first").map_err(db)?;
                if is_first {
                    if let Ok(i) = ioto_domain::Iccid::parse(&iccid) {
                        first.push(i);
                    }
                }
                let before: Option<String> = r.try_get("", "before_imei").map_err(db)?;
                let imei: Option<String> = r.try_get("", "imei").map_err(db)?;
                let at: chrono::DateTime<chrono::Utc> = r.try_get("", "at").map_err(db)?;
                let id: Uuid = r.try_get("", "id").map_err(db)?;
                let tenant: Uuid = r.try_get("", "tenant_id").map_err(db)?;
                changed((tenant, id), &iccid, before, imei, at);
            }
        }
        out.first_seen = first;
        insert_moves(txn, moved).await?;
        return Ok(out);
    }
    let mut first = Vec::new();
    for s in seen {
        let Some(row) = sim::Entity::find()
            .filter(sim::Column::Iccid.eq(s.iccid.as_str()))
            .one(txn)
            .await
            .map_err(db)?
        else {
            continue;
        };
        if row.last_activity_at.is_some_and(|at| at >= s.at) {
            continue;
        }
        if row.last_activity_at.is_none() {
            first.push(s.iccid.clone());
        }
        let mut update = sim::Entity::update_many()
            .col_expr(sim::Column::LastNetwork, Expr::value(s.network.to_string()))
            .col_expr(sim::Column::LastActivityAt, Expr::value(s.at));
        let imei = imei_of(s).map(str::to_owned);
        if let Some(imei) = &imei {
            update = update.col_expr(sim::Column::LastImei, Expr::value(imei.clone()));
        }
        update
            .filter(sim::Column::Id.eq(row.id))
            .exec(txn)
            .await
            .map_err(db)?;
        changed(
            (row.tenant_id, row.id),
            s.iccid.as_str(),
            row.last_imei,
            imei,
            s.at,
        );
    }
    first.dedup();
    out.first_seen = first;
    insert_moves(txn, moved).await?;
    Ok(out)
}

/// Records SIMs' changes of device (a handful per batch: a SIM rarely moves).
async fn insert_moves(txn: &DatabaseTransaction, moved: Vec<sim_imei_change::ActiveModel>) -> Result<()> {
    for chunk in moved.chunks(SQLITE_CHUNK) {
        sim_imei_change::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await
            .map_err(db)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_join_rows_and_refuse_a_value_holding_the_separator() {
        let mut c = Columns::new(["iccid", "tariffPlan"]);
        c.row([Some("8988"), None]).unwrap();
        c.row([Some("8989"), Some("basic")]).unwrap();
        let params = c.params();
        assert_eq!(params[0], sea_orm::Value::from("8988\u{1f}8989".to_owned()));
        // A missing value is empty between separators: NULL on the server.
        assert_eq!(params[1], sea_orm::Value::from("\u{1f}basic".to_owned()));

        let mut c = Columns::new(["iccid", "tariffPlan"]);
        let e = c.row([Some("8988"), Some("a\u{1f}b")]).unwrap_err();
        assert!(e.to_string().contains("tariffPlan"), "{e}");
        let e = c.row([Some(""), None]).unwrap_err();
        assert!(e.to_string().contains("iccid"), "{e}");
    }
}
