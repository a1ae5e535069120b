//! Alert rules and alerts: rules kept by fleet managers, alerts opened and resolved by the
//! evaluator (see [`ioto_domain::alert`]), read and acknowledged by the people they concern.
//!
//! ```text
//! ingest counts a batch ─► SIMs with traffic ─► data rules: usage from the hourly cube
//! fleet events (state changed, quota stage) ─► event rules
//! device readings stored ─► telemetry rules: the SIMs in those devices
//! every tick: SIMs gone quiet; open alerts again (pending passed? cleared? event quiet?)
//!   ─► step each alert (version-checked writes) ─► due alerts announced, grouped per rule
//! ```

mod evaluate;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ioto_domain::alert::lifecycle::{Acknowledgement, Alert};
use ioto_domain::alert::{AlertRule, AlertTarget, RuleSpec, Silence, SilenceMatcher, MAX_RULES_PER_TENANT};
use ioto_domain::fleet::query::Cursor;
use ioto_domain::ports::alerts::{AlertQuery, OpenCount};
use ioto_domain::ports::AlertStore;
use ioto_domain::{Actor, Error, Permission, Result, Role, TenantId};
use uuid::Uuid;

use crate::fleet::FleetService;

pub use evaluate::{day_of, AlertEvaluator, Pass, SCAN_SIMS};

/// Most alerts one page lists.
pub const MAX_PAGE: u64 = 500;

/// Alert rules, alerts and silences. Cheap to clone.
#[derive(Clone)]
pub struct AlertService {
    store: Arc<dyn AlertStore>,
    fleet: FleetService,
    evaluator: AlertEvaluator,
}

impl AlertService {
    pub fn new(store: Arc<dyn AlertStore>, fleet: FleetService, evaluator: AlertEvaluator) -> Self {
        Self {
            store,
            fleet,
            evaluator,
        }
    }

    pub fn evaluator(&self) -> &AlertEvaluator {
        &self.evaluator
    }

    /// The tenant's staff read rules; sub-customers' users do not.
    fn read_rules(actor: &Actor) -> Result<()> {
        actor.require(Permission::ReadSims, "read alert rules")?;
        if actor.role == Role::CustomerUser {
            return Err(Error::forbidden("read alert rules"));
        }
        Ok(())
    }

    pub async fn alert_rules(&self, actor: &Actor, tenant: Option<TenantId>) -> Result<Vec<AlertRule>> {
        Self::read_rules(actor)?;
        let tenant = actor.target_tenant(tenant)?;
        self.store.alert_rules(actor.scope(), tenant).await
    }

    pub async fn alert_rule(&self, actor: &Actor, id: Uuid) -> Result<Option<AlertRule>> {
        Self::read_rules(actor)?;
        self.store.alert_rule(actor.scope(), id).await
    }

    /// Checks that what the rule targets lives in its tenant (a sub-customer or SIM of another
    /// is refused as unknown, naming the field).
    async fn check_target(&self, actor: &Actor, tenant: TenantId, spec: &RuleSpec) -> Result<()> {
        spec.check()?;
        match &spec.target {
            AlertTarget::Customer(c) => {
                let found = self.fleet.store().customers_by_id(actor.scope(), &[*c]).await?;
                if !found.iter().any(|x| x.tenant_id == tenant) {
                    return Err(Error::invalid(
                        "target.customerId",
                        format!("no sub-customer {} in this tenant", c.0),
                    ));
                }
            }
            AlertTarget::Sim(id) => {
                let found = self.fleet.store().sims_by_id(actor.scope(), &[*id]).await?;
                if !found.iter().any(|s| s.tenant_id == tenant) {
                    return Err(Error::invalid("target.iccid", "no such SIM in this tenant"));
                }
            }
            _ => {}
        }
        Ok(())
    }

    pub async fn create_alert_rule(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        spec: RuleSpec,
    ) -> Result<AlertRule> {
        actor.require(Permission::ManageFleet, "create alert rules")?;
        let tenant = actor.target_tenant(tenant)?;
        self.check_target(actor, tenant, &spec).await?;
        let now = Utc::now();
        let mut spec = spec;
        spec.name = spec.name.trim().to_owned();
        let rule = AlertRule {
            id: Uuid::new_v4(),
            tenant_id: tenant,
            spec,
            created_by: actor.subject.clone(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        self.store
            .insert_alert_rule(actor.scope(), &rule, MAX_RULES_PER_TENANT)
            .await?;
        self.evaluator.rules_changed(Some(rule.spec.condition.metric));
        Ok(rule)
    }

    /// Replaces a rule's definition. With `version`, only if the rule is still at it.
    pub async fn update_alert_rule(
        &self,
        actor: &Actor,
        id: Uuid,
        spec: RuleSpec,
        version: Option<i64>,
    ) -> Result<AlertRule> {
        actor.require(Permission::ManageFleet, "change alert rules")?;
        let mut rule = self
            .store
            .alert_rule(actor.scope(), id)
            .await?
            .ok_or_else(|| Error::not_found("alert rule", id))?;
        if let Some(v) = version.filter(|v| *v != rule.version) {
            return Err(Error::Conflict(format!(
                "alert rule '{}' is at version {}, not {v}: it was changed meanwhile",
                rule.spec.name, rule.version
            )));
        }
        self.check_target(actor, rule.tenant_id, &spec).await?;
        let mut spec = spec;
        spec.name = spec.name.trim().to_owned();
        rule.spec = spec;
        rule.updated_at = Utc::now();
        rule.version += 1;
        self.store.update_alert_rule(actor.scope(), &rule).await?;
        self.evaluator.rules_changed(Some(rule.spec.condition.metric));
        Ok(rule)
    }

    /// Deletes a rule with its alerts; `false` when there was none.
    pub async fn delete_alert_rule(&self, actor: &Actor, id: Uuid) -> Result<bool> {
        actor.require(Permission::ManageFleet, "delete alert rules")?;
        let done = self.store.delete_alert_rule(actor.scope(), id).await?;
        self.evaluator.rules_changed(None);
        Ok(done)
    }

    /// The query as the caller may run it: a customer user sees only its own SIMs' alerts, and
    /// only where the tenant shares SIM data with its customers.
    async fn visible(&self, actor: &Actor, mut query: AlertQuery) -> Result<AlertQuery> {
        actor.require(Permission::ReadSims, "read alerts")?;
        if actor.role == Role::CustomerUser {
            if !self.fleet.sees_sims(actor).await? {
                return Err(Error::Forbidden(
                    "your provider shares device data only; SIM alerts are not visible to customers".into(),
                ));
            }
            query.customer_id = actor.customer_id;
        }
        query.tenant_id = Some(actor.target_tenant(query.tenant_id)?);
        Ok(query)
    }

    /// A page of alerts, newest first: `limit` of them, after `after`.
    pub async fn alerts(
        &self,
        actor: &Actor,
        query: AlertQuery,
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<Alert>> {
        let query = self.visible(actor, query).await?;
        self.store
            .alerts(actor.scope(), &query, after, limit.min(MAX_PAGE + 1))
            .await
    }

    pub async fn alert(&self, actor: &Actor, id: Uuid) -> Result<Option<Alert>> {
        let query = self.visible(actor, AlertQuery::default()).await?;
        Ok(self
            .store
            .alert(actor.scope(), id)
            .await?
            .filter(|a| Some(a.tenant_id) == query.tenant_id)
            .filter(|a| query.customer_id.is_none() || a.customer_id == query.customer_id))
    }

    /// Acknowledges an open alert: who, when, what they said; no more reminders of it.
    pub async fn acknowledge_alert(&self, actor: &Actor, id: Uuid, comment: Option<String>) -> Result<Alert> {
        actor.require(Permission::ManageFleet, "acknowledge alerts")?;
        if let Some(c) = &comment {
            if c.chars().count() > 500 {
                return Err(Error::invalid("comment", "at most 500 characters"));
            }
        }
        let alert = self
            .alert(actor, id)
            .await?
            .ok_or_else(|| Error::not_found("alert", id))?;
        let ack = Acknowledgement {
            by: actor.subject.clone(),
            at: Utc::now(),
            comment: comment.filter(|c| !c.trim().is_empty()),
        };
        if !self.store.acknowledge_alert(actor.scope(), id, &ack).await? {
            return Err(Error::Conflict(if alert.state.is_open() {
                "the alert was acknowledged already".into()
            } else {
                "the alert is resolved: there is nothing to acknowledge".into()
            }));
        }
        let acknowledged = self
            .alert(actor, id)
            .await?
            .ok_or_else(|| Error::not_found("alert", id))?;
        self.evaluator.changed(&acknowledged);
        Ok(acknowledged)
    }

    /// Open alerts by severity, for the dashboard.
    pub async fn open_alerts(&self, actor: &Actor, tenant: Option<TenantId>) -> Result<Vec<OpenCount>> {
        let query = self
            .visible(
                actor,
                AlertQuery {
                    tenant_id: tenant,
                    ..AlertQuery::default()
                },
            )
            .await?;
        let tenant = query.tenant_id.unwrap_or(actor.tenant_id);
        self.store
            .open_alert_counts(actor.scope(), tenant, query.customer_id)
            .await
    }

    /// Open alerts of one sub-customer's SIMs by severity (a customer user: only its own).
    pub async fn open_alerts_of(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        customer: ioto_domain::CustomerId,
    ) -> Result<Vec<OpenCount>> {
        let query = self
            .visible(
                actor,
                AlertQuery {
                    tenant_id: tenant,
                    customer_id: Some(customer),
                    ..AlertQuery::default()
                },
            )
            .await?;
        let tenant = query.tenant_id.unwrap_or(actor.tenant_id);
        self.store
            .open_alert_counts(actor.scope(), tenant, query.customer_id)
            .await
    }

    pub async fn silences(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        ended: bool,
    ) -> Result<Vec<Silence>> {
        Self::read_rules(actor)?;
        let tenant = actor.target_tenant(tenant)?;
        self.store
            .silences(actor.scope(), tenant, Utc::now(), ended)
            .await
    }

    pub async fn create_silence(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        matcher: SilenceMatcher,
        starts_at: Option<DateTime<Utc>>,
        ends_at: DateTime<Utc>,
        comment: Option<String>,
    ) -> Result<Silence> {
        actor.require(Permission::ManageFleet, "silence alerts")?;
        let tenant = actor.target_tenant(tenant)?;
        let now = Utc::now();
        let silence = Silence {
            id: Uuid::new_v4(),
            tenant_id: tenant,
            matcher,
            starts_at: starts_at.unwrap_or(now),
            ends_at,
            comment: comment.filter(|c| !c.trim().is_empty()),
            created_by: actor.subject.clone(),
            created_at: now,
        };
        silence.check(now)?;
        match &silence.matcher {
            SilenceMatcher::Rule(r) => {
                let rule = self.store.alert_rule(actor.scope(), *r).await?;
                if rule.is_none_or(|r| r.tenant_id != tenant) {
                    return Err(Error::invalid("ruleId", "no such alert rule in this tenant"));
                }
            }
            SilenceMatcher::Customer(c) => {
                let found = self.fleet.store().customers_by_id(actor.scope(), &[*c]).await?;
                if !found.iter().any(|x| x.tenant_id == tenant) {
                    return Err(Error::invalid(
                        "customerId",
                        "no such sub-customer in this tenant",
                    ));
                }
            }
            SilenceMatcher::Sim(id) => {
                let found = self.fleet.store().sims_by_id(actor.scope(), &[*id]).await?;
                if !found.iter().any(|s| s.tenant_id == tenant) {
                    return Err(Error::invalid("iccid", "no such SIM in this tenant"));
                }
            }
            SilenceMatcher::Label(_) => {}
        }
        self.store.insert_silence(actor.scope(), &silence).await?;
        Ok(silence)
    }

    /// Ends a silence now (one not begun is withdrawn); `false` when it had ended already.
    pub async fn end_silence(&self, actor: &Actor, id: Uuid) -> Result<bool> {
        actor.require(Permission::ManageFleet, "end silences")?;
        let now = Utc::now();
        let done = self.store.end_silence(actor.scope(), id, now).await?;
        if done {
            // What the silence held back is told of now.
            self.evaluator.announce(now).await?;
        }
        Ok(done)
    }
}
