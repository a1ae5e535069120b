//! Fleet queries: SIMs, devices, audit trail, label catalogue, schedules, settings.

use std::collections::HashMap;

use async_graphql::{Context, InputObject, Object, ID};
use chrono::Utc;
use ioto_domain::fleet::query::{
    check_page_size, device_cursor, quota_cursor, sim_cursor, DeviceSort, SimSort,
};
use ioto_domain::ports::ScheduleQuery;
use ioto_domain::{DeviceId, Error, SimId};

use crate::context::{actor, loaders, services};
use crate::enums::SortDirection;
use crate::enums::{DeviceOrderField, ScheduleStatusKind, SimOrderField};
use crate::error::{to_gql, GqlResult};
use crate::fleet::{
    AuditConnection, AuditEntryObject, AuditFilterInput, DeviceConnection, DeviceFilterInput,
    FleetSettingsObject, LabelSuggestionObject, PageInfo, ScheduledTransitionObject, SimConnection,
    SimFilterInput,
};
use crate::fleet::{DeviceObject, SimObject};
use crate::loaders::{prefetch_for_devices, prefetch_for_sims};
use crate::paging::page;
use crate::scalars::parse_tenant;
use crate::scalars::IccidScalar;

#[derive(Default)]
pub struct FleetQuery;

#[derive(InputObject, Clone, Copy)]
pub struct SimOrder {
    #[graphql(default_with = "SimOrderField::Iccid")]
    pub field: SimOrderField,
    #[graphql(default)]
    pub direction: SortDirection,
}

#[derive(InputObject, Clone, Copy)]
pub struct DeviceOrder {
    #[graphql(default_with = "DeviceOrderField::Name")]
    pub field: DeviceOrderField,
    #[graphql(default)]
    pub direction: SortDirection,
}

pub(crate) fn parse_device(id: &ID, field: &str) -> async_graphql::Result<DeviceId> {
    DeviceId::parse(id, field).map_err(to_gql)
}

#[Object]
impl FleetQuery {
    /// SIMs of the caller's tenant (platform admins may name another), filtered, sorted and
    /// paged forward with `first`/`after` (1 to 1000 per page).
    #[graphql(complexity = "crate::limits::page_cost(first, 50, child_complexity)")]
    async fn sims(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        filter: Option<SimFilterInput>,
        order_by: Option<SimOrder>,
        #[graphql(desc = "Page size (default 50).")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<SimConnection> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let filter = filter.unwrap_or_default().parse()?;
        let order = order_by.unwrap_or(SimOrder {
            field: SimOrderField::Iccid,
            direction: SortDirection::Asc,
        });
        let sort: SimSort = order.field.into();
        let page = page(
            first.unwrap_or(50),
            after.as_ref(),
            sort,
            order.direction == SortDirection::Desc,
        )?;
        let fleet = &services(ctx).fleet;
        let rows = fleet.sims(actor(ctx)?, tenant, &filter, &page).await.gql()?;
        // A SIM does not carry its share of its quota: the cursors of that order take the keys
        // the store ranked the SIMs by.
        let keys: HashMap<SimId, i64> = if sort == SimSort::QuotaPercent && !rows.is_empty() {
            let ids: Vec<SimId> = rows.iter().map(|s| s.id).collect();
            fleet
                .sim_quota_keys(actor(ctx)?, tenant, &ids, Utc::now())
                .await
                .gql()?
                .into_iter()
                .collect()
        } else {
            HashMap::new()
        };
        Ok(SimConnection::of(
            rows,
            &page,
            |s| match sort {
                SimSort::QuotaPercent => quota_cursor(s, keys.get(&s.id).copied()),
                _ => sim_cursor(s, sort),
            },
            tenant,
            filter,
        ))
    }

    /// One SIM by ICCID; null when it does not exist or is not visible to the caller.
    async fn sim(&self, ctx: &Context<'_>, iccid: IccidScalar) -> async_graphql::Result<Option<SimObject>> {
        let iccid = iccid.0;
        let sim = services(ctx).fleet.sim(actor(ctx)?, &iccid).await.gql()?;
        // Its nested fields are known here: loaded now, not after the dataloader's delay.
        if let Some(s) = &sim {
            prefetch_for_sims(loaders(ctx)?, ctx.look_ahead(), std::slice::from_ref(s)).await?;
        }
        Ok(sim.map(SimObject))
    }

    /// Devices of the caller's tenant, filtered, sorted and paged like `sims`.
    #[graphql(complexity = "crate::limits::page_cost(first, 50, child_complexity)")]
    async fn devices(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        filter: Option<DeviceFilterInput>,
        order_by: Option<DeviceOrder>,
        #[graphql(desc = "Page size (default 50).")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<DeviceConnection> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let filter = filter.unwrap_or_default().parse()?;
        let order = order_by.unwrap_or(DeviceOrder {
            field: DeviceOrderField::Name,
            direction: SortDirection::Asc,
        });
        let sort: DeviceSort = order.field.into();
        let page = page(
            first.unwrap_or(50),
            after.as_ref(),
            sort,
            order.direction == SortDirection::Desc,
        )?;
        let rows = services(ctx)
            .fleet
            .devices(actor(ctx)?, tenant, &filter, &page)
            .await
            .gql()?;
        Ok(DeviceConnection::of(
            rows,
            &page,
            |d| device_cursor(d, sort),
            tenant,
            filter,
        ))
    }

    /// One device; null when it does not exist or is not visible to the caller.
    async fn device(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<DeviceObject>> {
        let id = parse_device(&id, "id")?;
        let device = services(ctx).fleet.device(actor(ctx)?, id).await.gql()?;
        if let Some(d) = &device {
            prefetch_for_devices(loaders(ctx)?, ctx.look_ahead(), std::slice::from_ref(d)).await?;
        }
        Ok(device.map(DeviceObject))
    }

    /// The tenant's audit trail, newest first. `after` is the `endCursor` of the previous page.
    #[graphql(complexity = "crate::limits::page_cost(first, 50, child_complexity)")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        filter: Option<AuditFilterInput>,
        #[graphql(desc = "Page size (default 50).")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<AuditConnection> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let limit = check_page_size(first.unwrap_or(50).into()).gql()?;
        let before = after
            .map(|a| {
                a.parse::<i64>()
                    .map_err(|_| to_gql(Error::invalid("after", "is not a cursor this list returned")))
            })
            .transpose()?;
        let query = filter.unwrap_or_default().parse(limit + 1, before)?;
        let mut rows = services(ctx)
            .fleet
            .audit(actor(ctx)?, tenant, &query)
            .await
            .gql()?;
        let has_next_page = rows.len() as u64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(AuditConnection {
            page_info: PageInfo {
                has_next_page,
                has_previous_page: before.is_some(),
                start_cursor: rows.first().map(|e| e.id.to_string()),
                end_cursor: rows.last().map(|e| e.id.to_string()),
            },
            nodes: rows.into_iter().map(AuditEntryObject).collect(),
        })
    }

    /// Suggested label keys and values of the tenant, for dropdowns.
    async fn label_catalogue(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
    ) -> async_graphql::Result<Vec<LabelSuggestionObject>> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let list = services(ctx)
            .fleet
            .label_catalogue(actor(ctx)?, tenant)
            .await
            .gql()?;
        Ok(list.into_iter().map(Into::into).collect())
    }

    /// Scheduled SIM transitions, soonest first; by default the pending ones.
    #[graphql(complexity = "crate::limits::page_cost(first, 100, child_complexity)")]
    async fn scheduled_transitions(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        statuses: Option<Vec<ScheduleStatusKind>>,
        #[graphql(desc = "Page size (default 100).")] first: Option<i32>,
    ) -> async_graphql::Result<Vec<ScheduledTransitionObject>> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let statuses = statuses.unwrap_or_else(|| vec![ScheduleStatusKind::Pending]);
        let query = ScheduleQuery {
            sim: None,
            statuses: statuses.into_iter().map(Into::into).collect(),
            limit: check_page_size(first.unwrap_or(100).into()).gql()?,
        };
        let list = services(ctx)
            .fleet
            .schedules(actor(ctx)?, tenant, &query)
            .await
            .gql()?;
        Ok(list.into_iter().map(ScheduledTransitionObject).collect())
    }

    async fn fleet_settings(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
    ) -> async_graphql::Result<FleetSettingsObject> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let s = services(ctx).fleet.settings(actor(ctx)?, tenant).await.gql()?;
        Ok(s.into())
    }
}
