//! The alert mutations: rules, acknowledgements, silences.

use async_graphql::{Context, Object, ID};
use ioto_domain::alert::SilenceMatcher;
use ioto_domain::fleet::query::LabelFilter;
use ioto_domain::{CustomerId, Error};

use super::query::parse_uuid;
use super::*;
use crate::context::{actor, services};
use crate::error::GqlResult;
use crate::scalars::parse_tenant;

#[derive(Default)]
pub struct AlertMutation;

#[Object]
impl AlertMutation {
    /// Creates an alert rule (at most 200 per tenant). Fleet managers.
    async fn create_alert_rule(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        input: AlertRuleInput,
    ) -> async_graphql::Result<AlertRuleObject> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let spec = input.spec(ctx).await?;
        let rule = services(ctx)
            .alerts
            .create_alert_rule(actor(ctx)?, tenant, spec)
            .await
            .gql()?;
        Ok(AlertRuleObject(rule))
    }

    /// Replaces a rule's definition. With `version`, only if no one changed the rule
    /// meanwhile. Turning a rule off resolves its open alerts quietly.
    async fn update_alert_rule(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: AlertRuleInput,
        version: Option<BigInt>,
    ) -> async_graphql::Result<AlertRuleObject> {
        let id = parse_uuid(&id, "id")?;
        let spec = input.spec(ctx).await?;
        let rule = services(ctx)
            .alerts
            .update_alert_rule(actor(ctx)?, id, spec, version.map(|v| v.0))
            .await
            .gql()?;
        Ok(AlertRuleObject(rule))
    }

    /// Deletes a rule with its alerts. Returns whether it existed.
    async fn delete_alert_rule(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let id = parse_uuid(&id, "id")?;
        services(ctx)
            .alerts
            .delete_alert_rule(actor(ctx)?, id)
            .await
            .gql()
    }

    /// Acknowledges an open alert (who and when are recorded, with the comment): no more
    /// reminders of it. It still resolves on its own.
    async fn acknowledge_alert(
        &self,
        ctx: &Context<'_>,
        id: ID,
        comment: Option<String>,
    ) -> async_graphql::Result<AlertObject> {
        let id = parse_uuid(&id, "id")?;
        let alert = services(ctx)
            .alerts
            .acknowledge_alert(actor(ctx)?, id, comment)
            .await
            .gql()?;
        Ok(AlertObject(alert))
    }

    /// Silences alerts of a rule, a SIM, a label or a sub-customer until `endsAt`: they open
    /// and resolve as usual, but tell no one until the silence ends.
    async fn create_silence(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        input: SilenceInput,
    ) -> async_graphql::Result<SilenceObject> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let actor = actor(ctx)?;
        let named = [
            input.rule_id.is_some(),
            input.iccid.is_some(),
            input.label.is_some(),
            input.customer_id.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if named != 1 {
            return Err(crate::to_gql(Error::invalid(
                "input",
                "name exactly one of ruleId, iccid, label or customerId",
            )));
        }
        let matcher = if let Some(r) = &input.rule_id {
            SilenceMatcher::Rule(parse_uuid(r, "ruleId")?)
        } else if let Some(iccid) = &input.iccid {
            let sim = services(ctx)
                .fleet
                .sim(actor, &iccid.0)
                .await
                .gql()?
                .ok_or_else(|| crate::to_gql(Error::invalid("iccid", "no such SIM in this tenant")))?;
            SilenceMatcher::Sim(sim.id)
        } else if let Some(l) = &input.label {
            let key = ioto_domain::fleet::labels::parse_key(&l.key).gql()?;
            SilenceMatcher::Label(LabelFilter {
                key,
                value: l.value.clone(),
            })
        } else {
            let c = input
                .customer_id
                .as_ref()
                .map(|c| CustomerId::parse(c, "customerId"));
            SilenceMatcher::Customer(
                c.transpose()
                    .gql()?
                    .ok_or_else(|| crate::to_gql(Error::invalid("customerId", "name the sub-customer")))?,
            )
        };
        let silence = services(ctx)
            .alerts
            .create_silence(
                actor,
                tenant,
                matcher,
                input.starts_at,
                input.ends_at,
                input.comment,
            )
            .await
            .gql()?;
        Ok(SilenceObject(silence))
    }

    /// Ends a silence now (one not begun is withdrawn); what it held back is told of. Returns
    /// whether it was in force or ahead.
    async fn end_silence(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let id = parse_uuid(&id, "id")?;
        services(ctx).alerts.end_silence(actor(ctx)?, id).await.gql()
    }
}
