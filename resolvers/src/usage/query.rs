//! Usage queries: a SIM's session history for troubleshooting.

use crate::scalars::BigInt;
use async_graphql::{Context, Object, SimpleObject};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use ioto_domain::fleet::query::check_page_size;
use ioto_domain::ports::SessionUpdate;
use ioto_domain::Error;

use crate::context::{actor, services};
use crate::error::{to_gql, GqlResult};
use crate::fleet::PageInfo;
use crate::scalars::{IccidScalar, MccMncScalar};
use crate::usage::NetworkInfo;

#[derive(Default)]
pub struct UsageQuery;

/// One update of a data session, as the network reported it.
#[derive(SimpleObject)]
pub struct SessionRecord {
    pub at: DateTime<Utc>,
    pub network: NetworkInfo,
    pub radio_access_type: String,
    pub ip_address: Option<String>,
    pub cell_id: Option<String>,
    /// Bytes from the device since the previous update.
    pub bytes_in: BigInt,
    /// Bytes to the device since the previous update.
    pub bytes_out: BigInt,
    /// Bytes from the device since the session started.
    pub session_bytes_in: BigInt,
    pub session_bytes_out: BigInt,
    pub session_started_at: DateTime<Utc>,
    /// The session ended with this update.
    pub ended: bool,
}

#[derive(SimpleObject)]
pub struct SessionHistory {
    pub nodes: Vec<SessionRecord>,
    pub page_info: PageInfo,
}

fn cursor(u: &SessionUpdate) -> String {
    B64.encode(format!("{}:{}", u.event_time.timestamp(), u.session_id))
}

fn parse_cursor(s: &str) -> Result<(DateTime<Utc>, String), Error> {
    let bad = || Error::invalid("after", "is not a cursor this list returned");
    let text = B64
        .decode(s.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let (secs, session) = text.split_once(':').ok_or_else(bad)?;
    let t = secs
        .parse::<i64>()
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .ok_or_else(bad)?;
    Ok((t, session.to_owned()))
}

#[Object]
impl UsageQuery {
    /// A SIM's session updates of the last 7 days (or `[from, to)` within them), newest first,
    /// optionally on one network (`mccMnc`, e.g. "262-01"). For troubleshooting; usage for
    /// billing is `sim.usage`.
    #[expect(clippy::too_many_arguments, reason = "GraphQL arguments")]
    #[graphql(complexity = "crate::limits::page_cost(first, 50, child_complexity)")]
    async fn session_history(
        &self,
        ctx: &Context<'_>,
        iccid: IccidScalar,
        mcc_mnc: Option<MccMncScalar>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        #[graphql(desc = "Page size (default 50).")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<SessionHistory> {
        let iccid = iccid.0;
        let network = mcc_mnc.map(|n| n.0);
        let limit = check_page_size(first.unwrap_or(50).into()).gql()?;
        let before = after.as_deref().map(parse_cursor).transpose().map_err(to_gql)?;
        let svc = services(ctx);
        let actor = actor(ctx)?;
        let sim = svc
            .fleet
            .sim(actor, &iccid)
            .await
            .gql()?
            .ok_or_else(|| to_gql(Error::not_found("SIM", &iccid)))?;
        let now = Utc::now();
        let mut rows = svc
            .usage
            .session_history(
                actor,
                &sim,
                &ioto_domain::ports::HistoryQuery {
                    mcc_mnc: network.clone(),
                    from: from.unwrap_or(now - Duration::days(7)),
                    to: to.unwrap_or(now + Duration::minutes(1)),
                    before: before.clone(),
                    limit: limit + 1,
                },
            )
            .await
            .gql()?;
        let has_next_page = rows.len() as u64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(SessionHistory {
            page_info: PageInfo {
                has_next_page,
                has_previous_page: before.is_some(),
                start_cursor: rows.first().map(cursor),
                end_cursor: rows.last().map(cursor),
            },
            nodes: rows
                .into_iter()
                .map(|u| SessionRecord {
                    at: u.event_time,
                    network: NetworkInfo::of(&u.mcc_mnc),
                    radio_access_type: u.rat.name().to_owned(),
                    ip_address: u.ip_address.map(|ip| ip.to_string()),
                    cell_id: u.cell_id,
                    bytes_in: u.delta_in.into(),
                    bytes_out: u.delta_out.into(),
                    session_bytes_in: u.total_in.into(),
                    session_bytes_out: u.total_out.into(),
                    session_started_at: u.started_at,
                    ended: u.terminated,
                })
                .collect(),
        })
    }

    /// Bytes counted from sessions against bytes billed by CDRs, per SIM and day (`from` to `to`,
    /// inclusive, UTC days), ordered by day then ICCID. `onlyDifferences` keeps the SIM-days whose
    /// totals differ. Platform admins name the tenant.
    #[expect(clippy::too_many_arguments, reason = "GraphQL arguments")]
    #[graphql(complexity = "crate::limits::page_cost(first, 1000, child_complexity)")]
    async fn usage_reconciliation(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<async_graphql::ID>,
        from: crate::scalars::Date,
        to: crate::scalars::Date,
        iccid: Option<IccidScalar>,
        customer_id: Option<async_graphql::ID>,
        #[graphql(default = false)] only_differences: bool,
        #[graphql(desc = "Most rows (default 1,000, at most 10,000).")] first: Option<i32>,
    ) -> async_graphql::Result<Vec<crate::usage::ReconciliationRowObject>> {
        let tenant = tenant_id
            .map(|t| ioto_domain::TenantId::parse(&t, "tenantId"))
            .transpose()
            .gql()?;
        let customer = customer_id
            .map(|c| ioto_domain::CustomerId::parse(&c, "customerId"))
            .transpose()
            .gql()?;
        let limit = match first.unwrap_or(1000) {
            n @ 1..=10_000 => u64::try_from(n).unwrap_or(1000),
            n => {
                return Err(to_gql(Error::invalid(
                    "first",
                    format!("{n} is outside 1..=10000"),
                )))
            }
        };
        let rows = services(ctx)
            .usage
            .reconciliation(
                actor(ctx)?,
                tenant,
                ioto_domain::ports::ReconciliationQuery {
                    from: from.0,
                    to: to.0,
                    iccid: iccid.map(|i| i.0),
                    customer,
                    only_differences,
                    after: None,
                    limit,
                },
            )
            .await
            .gql()?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Usage per sub-customer, period and network in `[from, to)` (session view, seconds behind
    /// the network). `customerId` narrows to one sub-customer; a customer user always sees only
    /// its own. Platform admins name the tenant.
    #[graphql(complexity = "crate::limits::usage_cost(&from, &to, granularity, child_complexity)")]
    async fn customer_usage(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<async_graphql::ID>,
        customer_id: Option<async_graphql::ID>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        #[graphql(desc = "Period size (default DAY).")] granularity: Option<crate::usage::GranularityKind>,
    ) -> async_graphql::Result<Vec<crate::usage::CustomerUsagePointObject>> {
        let tenant = tenant_id
            .map(|t| ioto_domain::TenantId::parse(&t, "tenantId"))
            .transpose()
            .gql()?;
        let customer = customer_id
            .map(|c| ioto_domain::CustomerId::parse(&c, "customerId"))
            .transpose()
            .gql()?;
        let g = granularity.unwrap_or(crate::usage::GranularityKind::Day).into();
        // Usage is SIM data: hidden from customer users where their tenant hides SIMs.
        services(ctx)
            .fleet
            .require_sims_visible(actor(ctx)?)
            .await
            .gql()?;
        let points = services(ctx)
            .usage
            .customer_usage(actor(ctx)?, tenant, customer, from, to, g)
            .await
            .gql()?;
        Ok(points.into_iter().map(Into::into).collect())
    }
}
