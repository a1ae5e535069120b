//! Fleet filters and keyset pages as SQL conditions, for Postgres and SQLite.

use chrono::{DateTime, Utc};
use ioto_domain::fleet::query::{
    Cursor, CustomerFilter, DeviceFilter, DeviceSort, LabelFilter, Page, QuotaPercentFilter, SimFilter,
    SimSort,
};
use ioto_domain::{Error, Result, TenantId};
use sea_orm::sea_query::{Expr, Order, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select, Value,
};

use crate::entities::{device, sim};

/// `LIKE` pattern matching `s` anywhere, with `%`, `_` and `\` escaped.
fn contains_pattern(s: &str) -> String {
    let escaped = s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// Label conditions on the `labels` column of `table`.
fn label_conditions(
    backend: DbBackend,
    table: &str,
    labels: &[LabelFilter],
    search: Option<&str>,
) -> Condition {
    let mut c = Condition::all();
    for l in labels {
        let expr = match (backend, &l.value) {
            (DbBackend::Postgres, Some(v)) => {
                let doc = serde_json::json!({ l.key.clone(): v }).to_string();
                Expr::cust_with_values(format!("{table}.labels @> $1::jsonb"), [doc])
            }
            (DbBackend::Postgres, None) => {
                Expr::cust_with_values(format!("jsonb_exists({table}.labels, $1)"), [l.key.clone()])
            }
            (_, Some(v)) => Expr::cust_with_values(
                format!("json_extract({table}.labels, ?) = ?"),
                [format!("$.\"{}\"", l.key), v.clone()],
            ),
            (_, None) => Expr::cust_with_values(
                format!("json_type({table}.labels, ?) IS NOT NULL"),
                [format!("$.\"{}\"", l.key)],
            ),
        };
        c = c.add(expr);
    }
    if let Some(q) = search.map(str::trim).filter(|q| !q.is_empty()) {
        let pattern = contains_pattern(q);
        c = c.add(match backend {
            DbBackend::Postgres => {
                Expr::cust_with_values(format!("{table}.labels::text ILIKE $1 ESCAPE '\\'"), [pattern])
            }
            _ => Expr::cust_with_values(format!("{table}.labels LIKE ? ESCAPE '\\'"), [pattern]),
        });
    }
    c
}

/// Values of `col` starting with `prefix`, as a range an ordinary btree index serves (a `LIKE`
/// prefix needs a `C` collation or a pattern index). Sound for digit strings of at most `max_len`
/// characters: every such value lies between the prefix and the prefix padded with 9s.
fn digits_prefix<C: ColumnTrait>(col: C, prefix: &str, max_len: usize) -> Condition {
    let upper = format!("{prefix}{}", "9".repeat(max_len.saturating_sub(prefix.len())));
    Condition::all()
        .add(col.gte(prefix.to_owned()))
        .add(col.lte(upper))
}

fn range<C: ColumnTrait>(col: C, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Condition {
    let mut c = Condition::all();
    if let Some(f) = from {
        c = c.add(col.gte(f));
    }
    if let Some(t) = to {
        c = c.add(col.lt(t));
    }
    c
}

pub fn sim_condition(backend: DbBackend, tenant: TenantId, f: &SimFilter) -> Condition {
    let mut c = Condition::all().add(sim::Column::TenantId.eq(tenant.0));
    if !f.states.is_empty() {
        c = c.add(sim::Column::State.is_in(f.states.iter().map(|s| s.as_str())));
    }
    if !f.types.is_empty() {
        c = c.add(sim::Column::SimType.is_in(f.types.iter().map(|s| s.as_str())));
    }
    match f.customer {
        Some(CustomerFilter::Is(id)) => c = c.add(sim::Column::CustomerId.eq(id.0)),
        Some(CustomerFilter::Unassigned) => c = c.add(sim::Column::CustomerId.is_null()),
        None => {}
    }
    if !f.networks.is_empty() {
        c = c.add(sim::Column::LastNetwork.is_in(f.networks.iter().map(ToString::to_string)));
    }
    if let Some(p) = &f.iccid_prefix {
        c = c.add(digits_prefix(sim::Column::Iccid, p, 20));
    }
    if let Some(p) = &f.msisdn_prefix {
        // Stored as '+' and up to 15 digits.
        c = c.add(digits_prefix(sim::Column::Msisdn, p, 16));
    }
    c = c.add(range(
        sim::Column::LastActivityAt,
        f.last_activity_from,
        f.last_activity_to,
    ));
    if let Some(t) = f.quiet_since {
        c = c.add(
            Condition::any()
                .add(sim::Column::LastActivityAt.is_null())
                .add(sim::Column::LastActivityAt.lt(t)),
        );
    }
    if let Some(d) = f.device {
        c = c.add(sim::Column::DeviceId.eq(d.0));
    }
    match f.bound {
        Some(true) => c = c.add(sim::Column::DeviceId.is_not_null()),
        Some(false) => c = c.add(sim::Column::DeviceId.is_null()),
        None => {}
    }
    if let Some(q) = f.quota_percent {
        c = c.add(quota_percent(backend, q));
    }
    c.add(label_conditions(
        backend,
        "sims",
        &f.labels,
        f.label_search.as_deref(),
    ))
}

/// SIMs whose quota's current period has used a share of the limit in the filter's range (a
/// period not evaluated yet counts as nothing used).
fn quota_percent(backend: DbBackend, q: QuotaPercentFilter) -> SimpleExpr {
    let used = "COALESCE((SELECT p.used_bytes FROM sim_quota_periods p WHERE p.quota_id = q.id \
                AND p.period_start <= {at} AND p.period_end > {at}), 0) * 100";
    let mut sql = format!(
        "EXISTS (SELECT 1 FROM sim_quotas q WHERE q.sim_id = sims.id AND {used} >= {{min}} * q.limit_bytes"
    );
    if q.below.is_some() {
        sql.push_str(&format!(" AND {used} < {{max}} * q.limit_bytes"));
    }
    sql.push(')');
    let mut values: Vec<Value> = vec![q.at.into(), q.at.into(), i64::from(q.at_least).into()];
    if let Some(b) = q.below {
        values.extend([q.at.into(), q.at.into(), i64::from(b).into()]);
    }
    Expr::cust_with_values(placeholders(backend, &sql), values)
}

/// `sql` with each `{…}` replaced by the backend's placeholder, in the order the values are
/// bound: `$1`, `$2`, … on Postgres, `?` elsewhere.
fn placeholders(backend: DbBackend, sql: &str) -> String {
    let mut n = 0;
    let mut next = || {
        n += 1;
        match backend {
            DbBackend::Postgres => format!("${n}"),
            _ => "?".to_owned(),
        }
    };
    let mut out = String::new();
    let mut rest = sql;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').map_or(rest.len(), |e| i + e + 1);
        out.push_str(&next());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A SIM's key in [`SimSort::QuotaPercent`] order: per mille of its quota used in the period
/// holding `at`, as last evaluated (a period not evaluated yet counts as nothing used), and -1
/// for a SIM without a quota. Integer arithmetic in both engines: the whole multiples of the
/// limit and the remainder are scaled apart, so nothing overflows for limits up to 2^50 bytes
/// (`used * 1000` would, past 9 PB).
pub(crate) fn quota_key(backend: DbBackend, at: DateTime<Utc>) -> SimpleExpr {
    let sql = "COALESCE((SELECT COALESCE((SELECT p.used_bytes / q.limit_bytes * 1000 \
               + (p.used_bytes % q.limit_bytes) * 1000 / q.limit_bytes \
               FROM sim_quota_periods p WHERE p.quota_id = q.id \
               AND p.period_start <= {at} AND p.period_end > {at} \
               ORDER BY p.period_start DESC LIMIT 1), 0) \
               FROM sim_quotas q WHERE q.sim_id = sims.id), -1)";
    Expr::cust_with_values(placeholders(backend, sql), [Value::from(at), Value::from(at)])
}

/// Keyset page in [`SimSort::QuotaPercent`] order at `at`: rows after the cursor's (key, id),
/// ties broken by id. The key is computed, not a column: no index serves this order, every SIM
/// the filter matches is ranked (two index lookups each).
fn quota_page(
    backend: DbBackend,
    q: Select<sim::Entity>,
    page: &Page<SimSort>,
    at: DateTime<Utc>,
) -> Result<Select<sim::Entity>> {
    let key = quota_key(backend, at);
    let mut q = q;
    if let Some(c) = &page.after {
        let k: i64 =
            c.k.parse()
                .map_err(|_| Error::invalid("after", "is not a cursor this list returned"))?;
        let (beyond, tie): (SimpleExpr, SimpleExpr) = if page.descending {
            (Expr::expr(key.clone()).lt(k), sim::Column::Id.lt(c.id))
        } else {
            (Expr::expr(key.clone()).gt(k), sim::Column::Id.gt(c.id))
        };
        q = q.filter(
            Condition::any()
                .add(beyond)
                .add(Condition::all().add(Expr::expr(key.clone()).eq(k)).add(tie)),
        );
    }
    let order = || if page.descending { Order::Desc } else { Order::Asc };
    Ok(q.order_by(key, order())
        .order_by(sim::Column::Id, order())
        .limit(page.limit))
}

pub fn device_condition(backend: DbBackend, tenant: TenantId, f: &DeviceFilter) -> Condition {
    let mut c = Condition::all().add(device::Column::TenantId.eq(tenant.0));
    if !f.states.is_empty() {
        c = c.add(device::Column::State.is_in(f.states.iter().map(|s| s.as_str())));
    }
    if !f.kinds.is_empty() {
        c = c.add(device::Column::Kind.is_in(f.kinds.iter().map(|s| s.as_str())));
    }
    match f.customer {
        Some(CustomerFilter::Is(id)) => c = c.add(device::Column::CustomerId.eq(id.0)),
        Some(CustomerFilter::Unassigned) => c = c.add(device::Column::CustomerId.is_null()),
        None => {}
    }
    if let Some(p) = &f.imei_prefix {
        c = c.add(digits_prefix(device::Column::Imei, p, 15));
    }
    if let Some(n) = f
        .name_contains
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let pattern = contains_pattern(&n.to_lowercase());
        c = c.add(Expr::cust_with_values(
            match backend {
                DbBackend::Postgres => "lower(devices.name) LIKE $1 ESCAPE '\\'",
                _ => "lower(devices.name) LIKE ? ESCAPE '\\'",
            },
            [pattern],
        ));
    }
    c = c.add(range(
        device::Column::LastActivityAt,
        f.last_activity_from,
        f.last_activity_to,
    ));
    c.add(label_conditions(
        backend,
        "devices",
        &f.labels,
        f.label_search.as_deref(),
    ))
}

/// Keyset position and order: rows after `(key, id)` in the sort order, ties broken by id.
pub(crate) fn keyset<E: EntityTrait, C: ColumnTrait, I: ColumnTrait>(
    q: Select<E>,
    col: C,
    id: I,
    key: Option<(Value, uuid::Uuid)>,
    descending: bool,
    limit: u64,
) -> Select<E> {
    let mut q = q;
    if let Some((k, after)) = key {
        let (beyond, tie): (SimpleExpr, SimpleExpr) = if descending {
            (Expr::col(col).lt(k.clone()), Expr::col(id).lt(after))
        } else {
            (Expr::col(col).gt(k.clone()), Expr::col(id).gt(after))
        };
        q = q.filter(
            Condition::any()
                .add(beyond)
                .add(Condition::all().add(Expr::col(col).eq(k)).add(tie)),
        );
    }
    if descending {
        q.order_by_desc(col).order_by_desc(id).limit(limit)
    } else {
        q.order_by_asc(col).order_by_asc(id).limit(limit)
    }
}

fn cursor_value(c: &Cursor, is_time: bool) -> Result<Value> {
    Ok(if is_time {
        Value::from(c.time("after")?)
    } else {
        Value::from(c.k.clone())
    })
}

/// The page of `q` asked for; `at` is the time a [`SimSort::QuotaPercent`] order ranks by (the
/// period holding it).
pub fn sim_page(
    backend: DbBackend,
    q: Select<sim::Entity>,
    page: &Page<SimSort>,
    at: DateTime<Utc>,
) -> Result<Select<sim::Entity>> {
    let (col, is_time) = match page.sort {
        SimSort::Iccid => (sim::Column::Iccid, false),
        SimSort::State => (sim::Column::State, false),
        SimSort::CreatedAt => (sim::Column::CreatedAt, true),
        SimSort::UpdatedAt => (sim::Column::UpdatedAt, true),
        SimSort::QuotaPercent => return quota_page(backend, q, page, at),
    };
    if page.sort == SimSort::Iccid {
        // ICCIDs are unique: no tie-break, so the (tenant_id, iccid) index serves the order alone.
        let mut q = q;
        if let Some(c) = &page.after {
            q = q.filter(if page.descending {
                sim::Column::Iccid.lt(c.k.clone())
            } else {
                sim::Column::Iccid.gt(c.k.clone())
            });
        }
        return Ok(if page.descending {
            q.order_by_desc(sim::Column::Iccid).limit(page.limit)
        } else {
            q.order_by_asc(sim::Column::Iccid).limit(page.limit)
        });
    }
    let key = page
        .after
        .as_ref()
        .map(|c| cursor_value(c, is_time).map(|v| (v, c.id)))
        .transpose()?;
    Ok(keyset(q, col, sim::Column::Id, key, page.descending, page.limit))
}

pub fn device_page(q: Select<device::Entity>, page: &Page<DeviceSort>) -> Result<Select<device::Entity>> {
    let (col, is_time) = match page.sort {
        DeviceSort::Name => (device::Column::Name, false),
        DeviceSort::Imei => (device::Column::Imei, false),
        DeviceSort::State => (device::Column::State, false),
        DeviceSort::CreatedAt => (device::Column::CreatedAt, true),
        DeviceSort::UpdatedAt => (device::Column::UpdatedAt, true),
    };
    let key = page
        .after
        .as_ref()
        .map(|c| cursor_value(c, is_time).map(|v| (v, c.id)))
        .transpose()?;
    Ok(keyset(
        q,
        col,
        device::Column::Id,
        key,
        page.descending,
        page.limit,
    ))
}
