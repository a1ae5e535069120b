//! Alert rules, alerts and silences on sea-orm, for Postgres and SQLite alike. One open alert
//! per rule and subject is the partial unique index `alerts_one_open`; every alert write checks
//! the version it read. Announcing claims the due alerts (`FOR UPDATE SKIP LOCKED` on Postgres,
//! the write lock on SQLite) and their rules, and writes the notifications with the alerts' new
//! standing in the same transaction. Row-level security keeps tenants apart on Postgres; every
//! scoped read also filters by the scope's tenant (SQLite has no row-level security).

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use ioto_domain::alert::lifecycle::{announce, Acknowledgement, Alert, AlertState, AlertWrite, Announced};
use ioto_domain::alert::{
    AlertRule, AlertTarget, AnomalyCondition, AnomalyKind, Channels, Condition, Metric, Pacing, RuleSpec,
    Severity, Silence, SilenceMatcher, TelemetryField, TelemetryLimit, TelemetryValue,
};
use ioto_domain::fleet::query::{Cursor, LabelFilter};
use ioto_domain::fleet::{Sim, SimState};
use ioto_domain::forecast::{severity_from, AnomalyFilter, AnomalyRecord, StoredForecast};
use ioto_domain::notify::Notification;
use ioto_domain::ports::alerts::{AlertQuery, AlertStore, OpenCount, PoolForecast};
use ioto_domain::ports::forecasts::ForecastStore;
use ioto_domain::ports::quota_pools::QuotaPoolStore;
use ioto_domain::{CustomerId, Error, Result, Scope, SimId, TenantId};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, Condition as Where, ConnectionTrait, DatabaseTransaction, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set,
};
use serde_json::json;
use uuid::Uuid;

use crate::entities::{alert, alert_rule, alert_silence, sim, usage_forecast};
use crate::error::db;
use crate::fleet::SqlFleet;
use crate::notifications::{insert_notification, split_emails};
use crate::pool::{claim_rows, commit};

fn corrupt(table: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("stored {table}: {what}: {e}"))
}

/// New alerts written per statement (each binds a parameter per column; both engines take
/// tens of thousands per statement).
const INSERT_CHUNK: usize = 500;

fn secs(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl TryFrom<alert_rule::Model> for AlertRule {
    type Error = Error;
    fn try_from(m: alert_rule::Model) -> Result<Self> {
        let bad = |what: &str, e: Error| corrupt("alert rule", what, e);
        let target = match m.target_kind.as_str() {
            "ALL_SIMS" => AlertTarget::AllSims,
            "CUSTOMER" => AlertTarget::Customer(CustomerId(
                m.target_customer_id
                    .ok_or_else(|| corrupt("alert rule", "target", "no customer"))?,
            )),
            "LABELS" => {
                let list = m.target_labels.clone().unwrap_or(json!([]));
                let items = list.as_array().cloned().unwrap_or_default();
                AlertTarget::Labels(
                    items
                        .iter()
                        .map(|i| LabelFilter {
                            key: i["key"].as_str().unwrap_or_default().to_owned(),
                            value: i["value"].as_str().map(str::to_owned),
                        })
                        .collect(),
                )
            }
            "TARIFF_PLAN" => AlertTarget::TariffPlan(m.target_tariff_plan.clone().unwrap_or_default()),
            "SIM" => AlertTarget::Sim(SimId(
                m.target_sim_id
                    .ok_or_else(|| corrupt("alert rule", "target", "no SIM"))?,
            )),
            other => return Err(corrupt("alert rule", "target", other)),
        };
        let telemetry = match (m.telemetry_field.as_deref(), m.telemetry_value) {
            (Some(field), Some(value)) => Some(TelemetryLimit {
                field: TelemetryField::parse(field).map_err(|e| bad("telemetry field", e))?,
                value: TelemetryValue::from_hundredths(value),
                clear_value: m.telemetry_clear_value.map(TelemetryValue::from_hundredths),
            }),
            _ => None,
        };
        let anomaly = match m.anomaly_min_severity.as_deref() {
            None => None,
            Some(least) => Some(AnomalyCondition {
                kinds: m
                    .anomaly_kinds
                    .as_deref()
                    .unwrap_or_default()
                    .split(',')
                    .filter(|k| !k.is_empty())
                    .map(|k| AnomalyKind::parse(k).map_err(|e| corrupt("alert rule", "anomaly kind", e)))
                    .collect::<Result<Vec<_>>>()?,
                min_severity: severity_from(least)?,
            }),
        };
        Ok(AlertRule {
            id: m.id,
            tenant_id: TenantId(m.tenant_id),
            spec: RuleSpec {
                name: m.name,
                description: m.description,
                enabled: m.enabled,
                severity: Severity::parse(&m.severity).map_err(|e| bad("severity", e))?,
                target,
                condition: Condition {
                    metric: Metric::parse(&m.metric).map_err(|e| bad("metric", e))?,
                    threshold: m.threshold.map(|t| u64::try_from(t).unwrap_or(0)),
                    clear_threshold: m.clear_threshold.map(|t| u64::try_from(t).unwrap_or(0)),
                    state: m
                        .state
                        .as_deref()
                        .map(SimState::parse)
                        .transpose()
                        .map_err(|e| bad("state", e))?,
                    telemetry,
                    anomaly,
                },
                channels: Channels {
                    in_app: m.in_app,
                    webhook: m.webhook,
                    emails: split_emails(&m.emails),
                },
                pacing: Pacing {
                    pending_seconds: secs(m.pending_seconds),
                    group_wait_seconds: secs(m.group_wait_seconds),
                    group_interval_seconds: secs(m.group_interval_seconds),
                    repeat_seconds: secs(m.repeat_seconds),
                    resolve_after_seconds: secs(m.resolve_after_seconds),
                },
            },
            created_by: m.created_by,
            created_at: m.created_at,
            updated_at: m.updated_at,
            version: m.version,
        })
    }
}

fn rule_model(r: &AlertRule) -> alert_rule::ActiveModel {
    let s = &r.spec;
    let (customer, labels, plan, sim) = match &s.target {
        AlertTarget::AllSims => (None, None, None, None),
        AlertTarget::Customer(c) => (Some(c.0), None, None, None),
        AlertTarget::Labels(l) => (
            None,
            Some(json!(l
                .iter()
                .map(|f| json!({"key": f.key, "value": f.value}))
                .collect::<Vec<_>>())),
            None,
            None,
        ),
        AlertTarget::TariffPlan(p) => (None, None, Some(p.clone()), None),
        AlertTarget::Sim(id) => (None, None, None, Some(id.0)),
    };
    let int = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    alert_rule::ActiveModel {
        id: Set(r.id),
        tenant_id: Set(r.tenant_id.0),
        name: Set(s.name.trim().to_owned()),
        description: Set(s.description.clone()),
        enabled: Set(s.enabled),
        severity: Set(s.severity.as_str().to_owned()),
        target_kind: Set(s.target.kind().to_owned()),
        target_customer_id: Set(customer),
        target_labels: Set(labels),
        target_tariff_plan: Set(plan),
        target_sim_id: Set(sim),
        metric: Set(s.condition.metric.as_str().to_owned()),
        threshold: Set(s.condition.threshold.map(big)),
        clear_threshold: Set(s.condition.clear_threshold.map(big)),
        state: Set(s.condition.state.map(|st| st.as_str().to_owned())),
        telemetry_field: Set(s.condition.telemetry.map(|t| t.field.as_str().to_owned())),
        telemetry_value: Set(s.condition.telemetry.map(|t| t.value.hundredths())),
        telemetry_clear_value: Set(s
            .condition
            .telemetry
            .and_then(|t| t.clear_value)
            .map(TelemetryValue::hundredths)),
        anomaly_kinds: Set(s
            .condition
            .anomaly
            .as_ref()
            .map(|a| a.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(","))),
        anomaly_min_severity: Set(s
            .condition
            .anomaly
            .as_ref()
            .map(|a| a.min_severity.as_str().to_owned())),
        in_app: Set(s.channels.in_app),
        webhook: Set(s.channels.webhook),
        emails: Set(s.channels.emails.join(",")),
        pending_seconds: Set(int(s.pacing.pending_seconds)),
        group_wait_seconds: Set(int(s.pacing.group_wait_seconds)),
        group_interval_seconds: Set(int(s.pacing.group_interval_seconds)),
        repeat_seconds: Set(int(s.pacing.repeat_seconds)),
        resolve_after_seconds: Set(int(s.pacing.resolve_after_seconds)),
        announced_at: sea_orm::ActiveValue::NotSet,
        created_by: Set(r.created_by.clone()),
        created_at: Set(r.created_at),
        updated_at: Set(r.updated_at),
        version: Set(r.version),
    }
}

impl TryFrom<alert::Model> for Alert {
    type Error = Error;
    fn try_from(m: alert::Model) -> Result<Self> {
        let bad = |what: &str, e: Error| corrupt("alert", what, e);
        Ok(Alert {
            id: m.id,
            tenant_id: TenantId(m.tenant_id),
            rule_id: m.rule_id,
            sim_id: m.sim_id.map(SimId),
            subject: m.subject,
            subject_key: m.subject_key,
            customer_id: m.customer_id.map(CustomerId),
            severity: Severity::parse(&m.severity).map_err(|e| bad("severity", e))?,
            state: AlertState::parse(&m.state).map_err(|e| bad("state", e))?,
            // Signed in the store: a telemetry alert keeps its reading there in hundredths, below
            // zero too (two's complement in the domain's u64, see `ioto_domain::alert::telemetry`);
            // the other metrics' values are never negative.
            value: m.value as u64,
            started_at: m.started_at,
            fired_at: m.fired_at,
            resolved_at: m.resolved_at,
            last_seen_at: m.last_seen_at,
            repeats: u32::try_from(m.repeats).unwrap_or(0),
            flaps: u32::try_from(m.flaps).unwrap_or(0),
            event_key: m.event_key,
            detail: m.detail,
            acknowledged: match (m.ack_by, m.ack_at) {
                (Some(by), Some(at)) => Some(Acknowledgement {
                    by,
                    at,
                    comment: m.ack_comment,
                }),
                _ => None,
            },
            announced: Announced::parse(&m.announced)?,
            announced_at: m.announced_at,
            announce_at: m.announce_at,
            updated_at: m.updated_at,
            version: m.version,
        })
    }
}

fn alert_model(a: &Alert) -> alert::ActiveModel {
    let ack = a.acknowledged.as_ref();
    let count = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    alert::ActiveModel {
        id: Set(a.id),
        tenant_id: Set(a.tenant_id.0),
        rule_id: Set(a.rule_id),
        subject_key: Set(a.subject_key.clone()),
        subject: Set(a.subject.clone()),
        sim_id: Set(a.sim_id.map(|s| s.0)),
        customer_id: Set(a.customer_id.map(|c| c.0)),
        severity: Set(a.severity.as_str().to_owned()),
        state: Set(a.state.as_str().to_owned()),
        value: Set(a.value as i64),
        started_at: Set(a.started_at),
        fired_at: Set(a.fired_at),
        resolved_at: Set(a.resolved_at),
        last_seen_at: Set(a.last_seen_at),
        repeats: Set(count(a.repeats)),
        flaps: Set(count(a.flaps)),
        event_key: Set(a.event_key.clone()),
        detail: Set(a.detail.clone()),
        ack_by: Set(ack.map(|k| k.by.clone())),
        ack_at: Set(ack.map(|k| k.at)),
        ack_comment: Set(ack.and_then(|k| k.comment.clone())),
        announced: Set(a.announced.as_str().to_owned()),
        announced_at: Set(a.announced_at),
        announce_at: Set(a.announce_at),
        updated_at: Set(a.updated_at),
        version: Set(a.version),
    }
}

impl TryFrom<alert_silence::Model> for Silence {
    type Error = Error;
    fn try_from(m: alert_silence::Model) -> Result<Self> {
        let missing = |what: &str| corrupt("silence", what, "missing");
        let matcher = match m.matcher_kind.as_str() {
            "RULE" => SilenceMatcher::Rule(m.rule_id.ok_or_else(|| missing("rule"))?),
            "SIM" => SilenceMatcher::Sim(SimId(m.sim_id.ok_or_else(|| missing("sim"))?)),
            "CUSTOMER" => {
                SilenceMatcher::Customer(CustomerId(m.customer_id.ok_or_else(|| missing("customer"))?))
            }
            "LABEL" => SilenceMatcher::Label(LabelFilter {
                key: m.label_key.ok_or_else(|| missing("label"))?,
                value: m.label_value,
            }),
            other => return Err(corrupt("silence", "matcher", other)),
        };
        Ok(Silence {
            id: m.id,
            tenant_id: TenantId(m.tenant_id),
            matcher,
            starts_at: m.starts_at,
            ends_at: m.ends_at,
            comment: m.comment,
            created_by: m.created_by,
            created_at: m.created_at,
        })
    }
}

fn rules_in(scope: Scope) -> sea_orm::Select<alert_rule::Entity> {
    let q = alert_rule::Entity::find();
    match scope.tenant_id() {
        Some(t) => q.filter(alert_rule::Column::TenantId.eq(t.0)),
        None => q,
    }
}

fn alerts_in(scope: Scope) -> sea_orm::Select<alert::Entity> {
    let q = alert::Entity::find();
    match scope.tenant_id() {
        Some(t) => q.filter(alert::Column::TenantId.eq(t.0)),
        None => q,
    }
}

fn silences_in(scope: Scope) -> sea_orm::Select<alert_silence::Entity> {
    let q = alert_silence::Entity::find();
    match scope.tenant_id() {
        Some(t) => q.filter(alert_silence::Column::TenantId.eq(t.0)),
        None => q,
    }
}

const OPEN: [&str; 2] = ["PENDING", "FIRING"];

impl SqlFleet {
    /// Refuses a name another rule of the tenant has (names are how people find rules).
    async fn name_free(&self, txn: &DatabaseTransaction, rule: &AlertRule) -> Result<()> {
        let taken = alert_rule::Entity::find()
            .filter(alert_rule::Column::TenantId.eq(rule.tenant_id.0))
            .filter(alert_rule::Column::Name.eq(rule.spec.name.trim()))
            .filter(alert_rule::Column::Id.ne(rule.id))
            .count(txn)
            .await
            .map_err(db)?;
        if taken > 0 {
            return Err(Error::invalid(
                "name",
                format!("another alert rule is named '{}'", rule.spec.name.trim()),
            ));
        }
        Ok(())
    }

    /// Resolves a rule's open alerts without a word (the rule was turned off).
    async fn close_alerts_of(&self, txn: &DatabaseTransaction, rule: Uuid, now: DateTime<Utc>) -> Result<()> {
        alert::Entity::update_many()
            .col_expr(alert::Column::State, Expr::value("RESOLVED"))
            .col_expr(alert::Column::ResolvedAt, Expr::value(now))
            .col_expr(
                alert::Column::AnnounceAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(alert::Column::UpdatedAt, Expr::value(now))
            .col_expr(alert::Column::Version, Expr::col(alert::Column::Version).add(1))
            .filter(alert::Column::RuleId.eq(rule))
            .filter(alert::Column::State.is_in(OPEN))
            .exec(txn)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// The SIMs these alerts are about (for silences by label or sub-customer).
    async fn alert_sims(&self, txn: &DatabaseTransaction, alerts: &[alert::Model]) -> Result<Vec<Sim>> {
        let ids: Vec<Uuid> = alerts.iter().filter_map(|a| a.sim_id).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sim::Entity::find()
            .filter(sim::Column::Id.is_in(ids))
            .all(txn)
            .await
            .map_err(db)?;
        crate::convert::all(rows)
    }
}

#[async_trait]
impl AlertStore for SqlFleet {
    async fn alert_rules(&self, scope: Scope, tenant: TenantId) -> Result<Vec<AlertRule>> {
        self.read_all(
            scope,
            rules_in(scope)
                .filter(alert_rule::Column::TenantId.eq(tenant.0))
                .order_by_asc(alert_rule::Column::Name),
        )
        .await
    }

    async fn alert_rule(&self, scope: Scope, id: Uuid) -> Result<Option<AlertRule>> {
        self.read_one(scope, rules_in(scope).filter(alert_rule::Column::Id.eq(id)))
            .await
    }

    async fn insert_alert_rule(&self, scope: Scope, rule: &AlertRule, max: u64) -> Result<()> {
        let txn = self.begin(scope).await?;
        self.write_lock(&txn).await?;
        let count = rules_in(scope)
            .filter(alert_rule::Column::TenantId.eq(rule.tenant_id.0))
            .count(&txn)
            .await
            .map_err(db)?;
        if count >= max {
            return Err(Error::Conflict(format!(
                "a tenant keeps at most {max} alert rules; this one has {count}: delete or change one instead"
            )));
        }
        self.name_free(&txn, rule).await?;
        alert_rule::Entity::insert(rule_model(rule))
            .exec_without_returning(&txn)
            .await
            .map_err(db)?;
        commit(txn).await
    }

    async fn update_alert_rule(&self, scope: Scope, rule: &AlertRule) -> Result<()> {
        let txn = self.begin(scope).await?;
        self.write_lock(&txn).await?;
        self.name_free(&txn, rule).await?;
        let mut model = rule_model(rule);
        model.created_at = sea_orm::ActiveValue::NotSet;
        model.created_by = sea_orm::ActiveValue::NotSet;
        model.id = sea_orm::ActiveValue::NotSet;
        model.tenant_id = sea_orm::ActiveValue::NotSet;
        let done = alert_rule::Entity::update_many()
            .set(model)
            .filter(alert_rule::Column::Id.eq(rule.id))
            .filter(alert_rule::Column::TenantId.eq(rule.tenant_id.0))
            .filter(alert_rule::Column::Version.eq(rule.version - 1))
            .exec(&txn)
            .await
            .map_err(db)?;
        if done.rows_affected == 0 {
            return Err(Error::Conflict(format!(
                "alert rule '{}' was changed meanwhile; read it again and repeat the change",
                rule.spec.name.trim()
            )));
        }
        if !rule.spec.enabled {
            self.close_alerts_of(&txn, rule.id, rule.updated_at).await?;
        }
        commit(txn).await
    }

    async fn delete_alert_rule(&self, scope: Scope, id: Uuid) -> Result<bool> {
        let txn = self.begin(scope).await?;
        let mut q = alert_rule::Entity::delete_many().filter(alert_rule::Column::Id.eq(id));
        if let Some(t) = scope.tenant_id() {
            q = q.filter(alert_rule::Column::TenantId.eq(t.0));
        }
        let done = q.exec(&txn).await.map_err(db)?;
        commit(txn).await?;
        Ok(done.rows_affected > 0)
    }

    async fn enabled_alert_rules(&self) -> Result<Vec<AlertRule>> {
        self.read_all(
            Scope::Platform,
            alert_rule::Entity::find()
                .filter(alert_rule::Column::Enabled.eq(true))
                .order_by_asc(alert_rule::Column::Id),
        )
        .await
    }

    async fn current_alerts(
        &self,
        rule: Uuid,
        subjects: Option<&[String]>,
        reopen_since: DateTime<Utc>,
    ) -> Result<Vec<Alert>> {
        if subjects.is_some_and(<[String]>::is_empty) {
            return Ok(Vec::new());
        }
        let mut q = alert::Entity::find()
            .filter(alert::Column::RuleId.eq(rule))
            .filter(
                Where::any().add(alert::Column::State.is_in(OPEN)).add(
                    Where::all()
                        .add(alert::Column::State.eq("RESOLVED"))
                        .add(alert::Column::ResolvedAt.gte(reopen_since)),
                ),
            );
        let mut out: BTreeMap<String, alert::Model> = BTreeMap::new();
        let mut keep = |rows: Vec<alert::Model>| {
            for m in rows {
                let open = OPEN.contains(&m.state.as_str());
                match out.get(&m.subject_key) {
                    Some(have) if OPEN.contains(&have.state.as_str()) => {}
                    Some(have) if !open && have.updated_at >= m.updated_at => {}
                    _ => {
                        out.insert(m.subject_key.clone(), m);
                    }
                }
            }
        };
        let txn = self.begin(Scope::Platform).await?;
        match subjects {
            Some(keys) => {
                for chunk in keys.chunks(1000) {
                    let rows = q
                        .clone()
                        .filter(alert::Column::SubjectKey.is_in(chunk.iter().cloned()))
                        .all(&txn)
                        .await
                        .map_err(db)?;
                    keep(rows);
                }
            }
            None => {
                q = q.order_by_asc(alert::Column::Id);
                keep(q.all(&txn).await.map_err(db)?);
            }
        }
        commit(txn).await?;
        out.into_values().map(Alert::try_from).collect()
    }

    async fn write_alerts(&self, writes: &[AlertWrite]) -> Result<Vec<Uuid>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let txn = self.begin(Scope::Platform).await?;
        self.write_lock(&txn).await?;
        let mut applied = Vec::new();
        // New alerts in multi-row inserts; one that meets an open alert of the same rule and
        // subject (written meanwhile by another server) is left out, and only those written are
        // returned.
        let new: Vec<&Alert> = writes
            .iter()
            .filter_map(|w| match w {
                AlertWrite::Insert(a) => Some(a),
                _ => None,
            })
            .collect();
        for chunk in new.chunks(INSERT_CHUNK) {
            let mut insert = alert::Entity::insert_many(chunk.iter().map(|a| alert_model(a)))
                .on_conflict(OnConflict::new().do_nothing().to_owned())
                .into_query();
            insert.returning_col(alert::Column::Id);
            let backend = txn.get_database_backend();
            for row in txn.query_all(backend.build(&insert)).await.map_err(db)? {
                applied.push(row.try_get::<Uuid>("", "id").map_err(db)?);
            }
        }
        for w in writes {
            let done = match w {
                AlertWrite::Insert(_) => continue,
                AlertWrite::Update(a) => {
                    alert::Entity::update_many()
                        .set(alert_model(a))
                        .filter(alert::Column::Id.eq(a.id))
                        .filter(alert::Column::Version.eq(a.version - 1))
                        .exec(&txn)
                        .await
                        .map_err(db)?
                        .rows_affected
                }
                AlertWrite::Delete(a) => {
                    alert::Entity::delete_many()
                        .filter(alert::Column::Id.eq(a.id))
                        .filter(alert::Column::Version.eq(a.version))
                        .exec(&txn)
                        .await
                        .map_err(db)?
                        .rows_affected
                }
            };
            if done > 0 {
                applied.push(w.alert().id);
            }
        }
        commit(txn).await?;
        Ok(applied)
    }

    async fn announce_alerts(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<Notification>> {
        // An idle pass only reads.
        let probe = alert::Entity::find().filter(alert::Column::AnnounceAt.lte(now));
        if self.read_one::<_, Alert>(Scope::Platform, probe).await?.is_none() {
            return Ok(Vec::new());
        }
        let txn = self.begin(Scope::Platform).await?;
        self.write_lock(&txn).await?;
        let due = claim_rows(
            &txn,
            alert::Entity::find()
                .filter(alert::Column::AnnounceAt.lte(now))
                .order_by_asc(alert::Column::AnnounceAt)
                .limit(limit),
        )
        .await?;
        if due.is_empty() {
            commit(txn).await?;
            return Ok(Vec::new());
        }
        let mut rule_ids: Vec<Uuid> = due.iter().map(|a| a.rule_id).collect();
        rule_ids.sort_unstable();
        rule_ids.dedup();
        // The rules are locked too: a second server holding other alerts of the same rule waits
        // here, then sees that the rule just spoke and holds its alerts for the group interval.
        let rules: Vec<alert_rule::Model> = claim_rows(
            &txn,
            alert_rule::Entity::find().filter(alert_rule::Column::Id.is_in(rule_ids.clone())),
        )
        .await?;
        let mut tenants: Vec<Uuid> = rules.iter().map(|r| r.tenant_id).collect();
        tenants.sort_unstable();
        tenants.dedup();
        let silences: Vec<Silence> = crate::convert::all(
            alert_silence::Entity::find()
                .filter(alert_silence::Column::TenantId.is_in(tenants))
                .filter(alert_silence::Column::StartsAt.lte(now))
                .filter(alert_silence::Column::EndsAt.gt(now))
                .all(&txn)
                .await
                .map_err(db)?,
        )?;
        let sims = if silences
            .iter()
            .any(|s| matches!(s.matcher, SilenceMatcher::Label(_) | SilenceMatcher::Customer(_)))
        {
            self.alert_sims(&txn, &due).await?
        } else {
            Vec::new()
        };
        let mut by_rule: HashMap<Uuid, Vec<Alert>> = HashMap::new();
        for m in due {
            by_rule.entry(m.rule_id).or_default().push(Alert::try_from(m)?);
        }
        let mut told = Vec::new();
        for model in rules {
            let last_spoke = model.announced_at;
            let rule = AlertRule::try_from(model)?;
            let Some(alerts) = by_rule.get(&rule.id) else {
                continue;
            };
            let tenant_silences: Vec<Silence> = silences
                .iter()
                .filter(|s| s.tenant_id == rule.tenant_id)
                .cloned()
                .collect();
            let plan = announce(&rule, alerts, last_spoke, &tenant_silences, &sims, now);
            for a in &plan.alerts {
                alert::Entity::update_many()
                    .set(alert_model(a))
                    .filter(alert::Column::Id.eq(a.id))
                    .filter(alert::Column::Version.eq(a.version - 1))
                    .exec(&txn)
                    .await
                    .map_err(db)?;
            }
            for n in &plan.notifications {
                insert_notification(&txn, n).await?;
            }
            if plan.spoke {
                alert_rule::Entity::update_many()
                    .col_expr(alert_rule::Column::AnnouncedAt, Expr::value(now))
                    .filter(alert_rule::Column::Id.eq(rule.id))
                    .exec(&txn)
                    .await
                    .map_err(db)?;
            }
            told.extend(plan.notifications);
        }
        commit(txn).await?;
        Ok(told)
    }

    async fn alerts(
        &self,
        scope: Scope,
        query: &AlertQuery,
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<Alert>> {
        let mut q = alerts_in(scope);
        if let Some(t) = query.tenant_id {
            q = q.filter(alert::Column::TenantId.eq(t.0));
        }
        if !query.states.is_empty() {
            q = q.filter(alert::Column::State.is_in(query.states.iter().map(|s| s.as_str())));
        }
        if !query.severities.is_empty() {
            q = q.filter(alert::Column::Severity.is_in(query.severities.iter().map(|s| s.as_str())));
        }
        if let Some(r) = query.rule_id {
            q = q.filter(alert::Column::RuleId.eq(r));
        }
        if let Some(s) = query.sim_id {
            q = q.filter(alert::Column::SimId.eq(s.0));
        }
        if let Some(c) = query.customer_id {
            q = q.filter(alert::Column::CustomerId.eq(c.0));
        }
        if let Some(f) = query.from {
            q = q.filter(alert::Column::StartedAt.gte(f));
        }
        if let Some(t) = query.to {
            q = q.filter(alert::Column::StartedAt.lt(t));
        }
        if let Some(c) = after {
            let at = DateTime::parse_from_rfc3339(&c.k)
                .map_err(|_| Error::invalid("after", "not a cursor of this list"))?
                .with_timezone(&Utc);
            q = q.filter(
                Where::any().add(alert::Column::StartedAt.lt(at)).add(
                    Where::all()
                        .add(alert::Column::StartedAt.eq(at))
                        .add(alert::Column::Id.lt(c.id)),
                ),
            );
        }
        self.read_all(
            scope,
            q.order_by_desc(alert::Column::StartedAt)
                .order_by_desc(alert::Column::Id)
                .limit(limit),
        )
        .await
    }

    async fn alert(&self, scope: Scope, id: Uuid) -> Result<Option<Alert>> {
        self.read_one(scope, alerts_in(scope).filter(alert::Column::Id.eq(id)))
            .await
    }

    async fn acknowledge_alert(&self, scope: Scope, id: Uuid, ack: &Acknowledgement) -> Result<bool> {
        let txn = self.begin(scope).await?;
        // Read, then written: on SQLite the write lock first (see `write_lock`).
        self.write_lock(&txn).await?;
        let Some(m) = alerts_in(scope)
            .filter(alert::Column::Id.eq(id))
            .one(&txn)
            .await
            .map_err(db)?
        else {
            return Ok(false);
        };
        let a = Alert::try_from(m)?;
        if !a.state.is_open() || a.acknowledged.is_some() {
            return Ok(false);
        }
        let mut b = a.clone();
        b.acknowledged = Some(ack.clone());
        b.version += 1;
        b.updated_at = ack.at;
        if b.announced == Announced::Firing {
            // People were told; an acknowledged alert is not reminded of.
            b.announce_at = None;
        }
        let done = alert::Entity::update_many()
            .set(alert_model(&b))
            .filter(alert::Column::Id.eq(id))
            .filter(alert::Column::Version.eq(a.version))
            .exec(&txn)
            .await
            .map_err(db)?;
        commit(txn).await?;
        Ok(done.rows_affected > 0)
    }

    async fn open_alert_counts(
        &self,
        scope: Scope,
        tenant: TenantId,
        customer: Option<CustomerId>,
    ) -> Result<Vec<OpenCount>> {
        #[derive(FromQueryResult)]
        struct Row {
            severity: String,
            state: String,
            n: i64,
        }
        let mut q = alerts_in(scope)
            .select_only()
            .column(alert::Column::Severity)
            .column(alert::Column::State)
            .column_as(Expr::col(alert::Column::Id).count(), "n")
            .filter(alert::Column::TenantId.eq(tenant.0))
            .filter(alert::Column::State.is_in(OPEN))
            .group_by(alert::Column::Severity)
            .group_by(alert::Column::State);
        if let Some(c) = customer {
            q = q.filter(alert::Column::CustomerId.eq(c.0));
        }
        let txn = self.begin(scope).await?;
        let rows = q.into_model::<Row>().all(&txn).await.map_err(db)?;
        commit(txn).await?;
        let mut out: Vec<OpenCount> = Severity::ALL
            .iter()
            .map(|s| OpenCount {
                severity: *s,
                firing: 0,
                pending: 0,
            })
            .collect();
        for r in rows {
            let severity = Severity::parse(&r.severity).map_err(|e| corrupt("alert", "severity", e))?;
            if let Some(o) = out.iter_mut().find(|o| o.severity == severity) {
                let n = u64::try_from(r.n).unwrap_or(0);
                if r.state == "FIRING" {
                    o.firing += n;
                } else {
                    o.pending += n;
                }
            }
        }
        Ok(out)
    }

    async fn silences(
        &self,
        scope: Scope,
        tenant: TenantId,
        now: DateTime<Utc>,
        ended: bool,
    ) -> Result<Vec<Silence>> {
        let mut q = silences_in(scope).filter(alert_silence::Column::TenantId.eq(tenant.0));
        if !ended {
            q = q.filter(alert_silence::Column::EndsAt.gt(now));
        }
        self.read_all(scope, q.order_by_desc(alert_silence::Column::EndsAt).limit(1000))
            .await
    }

    async fn insert_silence(&self, scope: Scope, s: &Silence) -> Result<()> {
        let (kind, rule, sim, key, value, customer) = match &s.matcher {
            SilenceMatcher::Rule(r) => ("RULE", Some(*r), None, None, None, None),
            SilenceMatcher::Sim(id) => ("SIM", None, Some(id.0), None, None, None),
            SilenceMatcher::Label(f) => ("LABEL", None, None, Some(f.key.clone()), f.value.clone(), None),
            SilenceMatcher::Customer(c) => ("CUSTOMER", None, None, None, None, Some(c.0)),
        };
        let txn = self.begin(scope).await?;
        alert_silence::Entity::insert(alert_silence::ActiveModel {
            id: Set(s.id),
            tenant_id: Set(s.tenant_id.0),
            matcher_kind: Set(kind.to_owned()),
            rule_id: Set(rule),
            sim_id: Set(sim),
            label_key: Set(key),
            label_value: Set(value),
            customer_id: Set(customer),
            starts_at: Set(s.starts_at),
            ends_at: Set(s.ends_at),
            comment: Set(s.comment.clone()),
            created_by: Set(s.created_by.clone()),
            created_at: Set(s.created_at),
        })
        .exec_without_returning(&txn)
        .await
        .map_err(db)?;
        commit(txn).await
    }

    async fn end_silence(&self, scope: Scope, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
        let txn = self.begin(scope).await?;
        // Read, then written: on SQLite the write lock first (see `write_lock`).
        self.write_lock(&txn).await?;
        let tenant = |mut w: Where| {
            if let Some(t) = scope.tenant_id() {
                w = w.add(alert_silence::Column::TenantId.eq(t.0));
            }
            w
        };
        let was = silences_in(scope)
            .filter(alert_silence::Column::Id.eq(id))
            .one(&txn)
            .await
            .map_err(db)?;
        // One not begun yet is withdrawn; one under way ends now.
        let withdrawn = alert_silence::Entity::delete_many()
            .filter(tenant(
                Where::all()
                    .add(alert_silence::Column::Id.eq(id))
                    .add(alert_silence::Column::StartsAt.gte(now)),
            ))
            .exec(&txn)
            .await
            .map_err(db)?
            .rows_affected;
        let ended = alert_silence::Entity::update_many()
            .col_expr(alert_silence::Column::EndsAt, Expr::value(now))
            .filter(tenant(
                Where::all()
                    .add(alert_silence::Column::Id.eq(id))
                    .add(alert_silence::Column::EndsAt.gt(now)),
            ))
            .exec(&txn)
            .await
            .map_err(db)?
            .rows_affected;
        if let Some(was) = was.filter(|_| ended > 0) {
            // What waited for the silence to end is told of now.
            alert::Entity::update_many()
                .col_expr(alert::Column::AnnounceAt, Expr::value(now))
                .filter(alert::Column::TenantId.eq(was.tenant_id))
                .filter(alert::Column::AnnounceAt.eq(was.ends_at))
                .exec(&txn)
                .await
                .map_err(db)?;
        }
        commit(txn).await?;
        Ok(withdrawn + ended > 0)
    }

    async fn sim_quota_forecasts(
        &self,
        tenant: TenantId,
        by: NaiveDate,
        also: &[SimId],
        limit: u64,
    ) -> Result<Vec<StoredForecast>> {
        use usage_forecast::Column as C;
        let scope = Scope::tenant(tenant);
        let sims = || {
            usage_forecast::Entity::find()
                .filter(C::TenantId.eq(tenant.0))
                .filter(C::SubjectKind.eq("SIM"))
        };
        let mut out: Vec<StoredForecast> = self
            .read_all(
                scope,
                sims()
                    .filter(C::ExhaustionLikely.lte(by))
                    .order_by_asc(C::ExhaustionLikely)
                    .order_by_asc(C::SubjectId)
                    .limit(limit),
            )
            .await?;
        let have: std::collections::HashSet<Uuid> = out.iter().map(|f| f.subject.id(tenant)).collect();
        let rest: Vec<Uuid> = also.iter().map(|s| s.0).filter(|id| !have.contains(id)).collect();
        for chunk in rest.chunks(1_000) {
            let more: Vec<StoredForecast> = self
                .read_all(scope, sims().filter(C::SubjectId.is_in(chunk.iter().copied())))
                .await?;
            out.extend(more);
        }
        Ok(out)
    }

    async fn pool_quota_forecasts(&self, tenant: TenantId, by: NaiveDate) -> Result<Vec<PoolForecast>> {
        use usage_forecast::Column as C;
        let scope = Scope::tenant(tenant);
        let pools = QuotaPoolStore::pools(self, scope, tenant).await?;
        if pools.is_empty() {
            return Ok(Vec::new());
        }
        // The primary key (tenant, kind, id) finds the tenant's pool forecasts.
        let running_out: Vec<StoredForecast> = self
            .read_all(
                scope,
                usage_forecast::Entity::find()
                    .filter(C::TenantId.eq(tenant.0))
                    .filter(C::SubjectKind.eq("POOL"))
                    .filter(C::ExhaustionLikely.lte(by)),
            )
            .await?;
        let mut of: HashMap<Uuid, StoredForecast> = running_out
            .into_iter()
            .map(|f| (f.subject.id(tenant), f))
            .collect();
        Ok(pools
            .into_iter()
            .map(|pool| PoolForecast {
                running_out: of.remove(&pool.id),
                pool,
            })
            .collect())
    }

    async fn anomalies_from(
        &self,
        tenant: TenantId,
        from: NaiveDate,
        limit: u64,
    ) -> Result<Vec<AnomalyRecord>> {
        let filter = AnomalyFilter {
            from: Some(from),
            ..AnomalyFilter::default()
        };
        ForecastStore::anomalies(self, Scope::tenant(tenant), tenant, &filter, None, limit).await
    }
}
