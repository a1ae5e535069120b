//! The Relay connection SIMs and devices share: a page of rows with their cursors, the rows'
//! nested fields loaded for the whole page at once, and the count of every row the filter
//! matches, taken only when asked for.

use async_graphql::{Context, Lookahead, Object, OutputType, SimpleObject};
use futures::future::BoxFuture;
use ioto_domain::fleet::query::{Cursor, DeviceFilter, Page, SimFilter};
use ioto_domain::fleet::{Device, Sim};
use ioto_domain::TenantId;

use super::{DeviceObject, PageInfo, SimObject};
use crate::context::{actor, loaders, services};
use crate::error::GqlResult;
use crate::loaders::{prefetch_for_devices, prefetch_for_sims};
use crate::paging::edges;

/// A kind of row a fleet list pages through.
pub trait Listed: Clone + Send + Sync + 'static {
    /// The row as the schema shows it.
    type Node: OutputType;
    /// What the list was filtered by (counted again for `totalCount`).
    type Filter: Send + Sync;
    fn node(self) -> Self::Node;
    /// Loads what `selection` asks of these rows' nested fields, for all of them at once.
    fn prefetch<'a>(
        ctx: &'a Context<'_>,
        selection: Lookahead<'a>,
        rows: &'a [Self],
    ) -> BoxFuture<'a, async_graphql::Result<()>>;
    /// Every row the caller may see in `tenant` that matches `filter`.
    fn count<'a>(
        ctx: &'a Context<'_>,
        tenant: Option<TenantId>,
        filter: &'a Self::Filter,
    ) -> BoxFuture<'a, async_graphql::Result<u64>>;
}

impl Listed for Sim {
    type Node = SimObject;
    type Filter = SimFilter;
    fn node(self) -> SimObject {
        SimObject(self)
    }
    fn prefetch<'a>(
        ctx: &'a Context<'_>,
        selection: Lookahead<'a>,
        rows: &'a [Sim],
    ) -> BoxFuture<'a, async_graphql::Result<()>> {
        Box::pin(async move { prefetch_for_sims(loaders(ctx)?, selection, rows).await })
    }
    fn count<'a>(
        ctx: &'a Context<'_>,
        tenant: Option<TenantId>,
        filter: &'a SimFilter,
    ) -> BoxFuture<'a, async_graphql::Result<u64>> {
        Box::pin(async move {
            services(ctx)
                .fleet
                .count_sims(actor(ctx)?, tenant, filter)
                .await
                .gql()
        })
    }
}

impl Listed for Device {
    type Node = DeviceObject;
    type Filter = DeviceFilter;
    fn node(self) -> DeviceObject {
        DeviceObject(self)
    }
    fn prefetch<'a>(
        ctx: &'a Context<'_>,
        selection: Lookahead<'a>,
        rows: &'a [Device],
    ) -> BoxFuture<'a, async_graphql::Result<()>> {
        Box::pin(async move { prefetch_for_devices(loaders(ctx)?, selection, rows).await })
    }
    fn count<'a>(
        ctx: &'a Context<'_>,
        tenant: Option<TenantId>,
        filter: &'a DeviceFilter,
    ) -> BoxFuture<'a, async_graphql::Result<u64>> {
        Box::pin(async move {
            services(ctx)
                .fleet
                .count_devices(actor(ctx)?, tenant, filter)
                .await
                .gql()
        })
    }
}

/// A row of a page with its cursor.
#[derive(SimpleObject)]
#[graphql(concrete(name = "SimEdge", params(SimObject)))]
#[graphql(concrete(name = "DeviceEdge", params(DeviceObject)))]
pub struct Edge<N: OutputType> {
    pub cursor: String,
    pub node: N,
}

/// A page of SIMs or devices (Relay connection).
pub struct Connection<T: Listed> {
    pub edges: Vec<(String, T)>,
    pub has_next_page: bool,
    /// Whether the page was asked for after a cursor.
    pub after: bool,
    pub tenant: Option<TenantId>,
    pub filter: T::Filter,
}

pub type SimConnection = Connection<Sim>;
pub type DeviceConnection = Connection<Device>;

impl<T: Listed> Connection<T> {
    /// The page shown for `rows`, read from the store with `page` (one row more than shown,
    /// see [`crate::paging::edges`]).
    pub fn of<S>(
        rows: Vec<T>,
        page: &Page<S>,
        cursor: impl Fn(&T) -> Cursor,
        tenant: Option<TenantId>,
        filter: T::Filter,
    ) -> Self {
        let (edges, has_next_page) = edges(rows, page.limit, cursor);
        Connection {
            edges,
            has_next_page,
            after: page.after.is_some(),
            tenant,
            filter,
        }
    }

    fn rows(&self) -> Vec<T> {
        self.edges.iter().map(|(_, r)| r.clone()).collect()
    }
}

#[Object(
    concrete(name = "SimConnection", params(Sim)),
    concrete(name = "DeviceConnection", params(Device))
)]
impl<T: Listed> Connection<T>
where
    Edge<T::Node>: OutputType,
{
    async fn edges(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Edge<T::Node>>> {
        T::prefetch(ctx, ctx.look_ahead().field("node"), &self.rows()).await?;
        Ok(self
            .edges
            .iter()
            .map(|(c, r)| Edge {
                cursor: c.clone(),
                node: r.clone().node(),
            })
            .collect())
    }
    async fn nodes(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<T::Node>> {
        let rows = self.rows();
        T::prefetch(ctx, ctx.look_ahead(), &rows).await?;
        Ok(rows.into_iter().map(T::node).collect())
    }
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.has_next_page,
            has_previous_page: self.after,
            start_cursor: self.edges.first().map(|(c, _)| c.clone()),
            end_cursor: self.edges.last().map(|(c, _)| c.clone()),
        }
    }
    /// All rows matching the filter (counted only when asked for).
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let n = T::count(ctx, self.tenant, &self.filter).await?;
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }
}
