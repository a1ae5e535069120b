//! What an analytics request asks: the time range, the filter, the measures and dimensions, and
//! the row a drill-down starts from.

use super::*;
use crate::error::to_gql;
use crate::scalars::{IccidScalar, MccMncScalar};
use crate::usage::GranularityKind;
use async_graphql::{InputObject, ID};
use chrono::{DateTime, Utc};
use ioto_app::analytics::{AnalyticsQuery, DrillRow, RangeSpec};
use ioto_domain::analytics::AnalyticsFilter;
use ioto_domain::usage::RadioAccessType;
use ioto_domain::{CustomerId, Error};

/// A time range: a preset, or `from` and `to` (both).
#[derive(InputObject, Clone, Default)]
pub struct TimeRangeInput {
    pub preset: Option<PresetGql>,
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
}

impl TimeRangeInput {
    pub(crate) fn parse(&self) -> async_graphql::Result<RangeSpec> {
        match (self.preset, self.from, self.to) {
            (Some(p), None, None) => Ok(RangeSpec::Preset(p.into())),
            (None, Some(from), Some(to)) => Ok(RangeSpec::Custom { from, to }),
            _ => Err(to_gql(Error::invalid(
                "timeRange",
                "give either a preset or both from and to",
            ))),
        }
    }
}

#[derive(InputObject, Clone)]
pub struct LabelMatchInput {
    pub key: String,
    pub value: String,
}

/// Conditions on the rows; all must hold.
#[derive(InputObject, Clone, Default)]
pub struct AnalyticsFilterInput {
    pub sub_customer_id: Option<ID>,
    pub iccids: Option<Vec<IccidScalar>>,
    pub networks: Option<Vec<MccMncScalar>>,
    /// ISO 3166 alpha-2 codes.
    pub countries: Option<Vec<String>>,
    pub labels: Option<Vec<LabelMatchInput>>,
    pub tariff_plans: Option<Vec<String>>,
    /// Radio access types by name (`LTE`, `NB-IoT`, …).
    pub rats: Option<Vec<String>>,
}

pub(super) fn customer_id(field: &str, id: Option<&ID>) -> async_graphql::Result<Option<CustomerId>> {
    id.map(|id| CustomerId::parse(id, field))
        .transpose()
        .map_err(to_gql)
}

impl AnalyticsFilterInput {
    pub(crate) fn parse(self) -> async_graphql::Result<AnalyticsFilter> {
        let mut rats = Vec::new();
        for (i, r) in self.rats.unwrap_or_default().iter().enumerate() {
            rats.push(
                RadioAccessType::parse(r)
                    .map_err(|_| {
                        Error::invalid(
                            format!("filter.rats[{i}]"),
                            format!(
                                "'{r}' is not a radio access type (GERAN, UTRAN, LTE, LTE-M, NB-IoT, 5G NR)"
                            ),
                        )
                    })
                    .map_err(to_gql)?,
            );
        }
        let mut countries = Vec::new();
        for (i, c) in self.countries.unwrap_or_default().into_iter().enumerate() {
            let c = c.trim().to_ascii_uppercase();
            if c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_uppercase()) {
                return Err(to_gql(Error::invalid(
                    format!("filter.countries[{i}]"),
                    "must be an ISO 3166 alpha-2 code such as DE",
                )));
            }
            countries.push(c);
        }
        Ok(AnalyticsFilter {
            customer: customer_id("filter.subCustomerId", self.sub_customer_id.as_ref())?,
            iccids: self.iccids.unwrap_or_default().into_iter().map(|i| i.0).collect(),
            networks: self
                .networks
                .unwrap_or_default()
                .into_iter()
                .map(|n| n.0)
                .collect(),
            countries,
            labels: self
                .labels
                .unwrap_or_default()
                .into_iter()
                .map(|l| (l.key, l.value))
                .collect(),
            tariff_plans: self.tariff_plans.unwrap_or_default(),
            rats,
        })
    }
}

/// One analytics request.
#[derive(InputObject, Clone)]
pub struct UsageAnalyticsInput {
    pub measures: Vec<MeasureGql>,
    #[graphql(default)]
    pub dimensions: Vec<DimensionGql>,
    /// The label `LABEL` groups by.
    pub label_key: Option<String>,
    pub filter: Option<AnalyticsFilterInput>,
    pub time_range: TimeRangeInput,
    /// Omitted: the preset's own, or the whole range as one row per group.
    pub granularity: Option<GranularityKind>,
    /// IANA zone the days, months and years are counted in (UTC when omitted).
    pub time_zone: Option<String>,
}

impl UsageAnalyticsInput {
    pub(crate) fn parse(self) -> async_graphql::Result<AnalyticsQuery> {
        Ok(AnalyticsQuery {
            measures: self.measures.into_iter().map(Into::into).collect(),
            dimensions: self.dimensions.into_iter().map(Into::into).collect(),
            label_key: self.label_key,
            filter: self.filter.unwrap_or_default().parse()?,
            range: self.time_range.parse()?,
            granularity: self.granularity.map(Into::into),
            time_zone: self.time_zone,
        })
    }
}

/// The row to drill into: its dimension values as `usageAnalytics` returned them.
#[derive(InputObject, Clone, Default)]
pub struct AnalyticsRowInput {
    pub time: Option<DateTime<Utc>>,
    pub network: Option<MccMncScalar>,
    pub country: Option<String>,
    pub sub_customer_id: Option<ID>,
    pub label: Option<String>,
    pub tariff_plan: Option<String>,
    pub rat: Option<String>,
}

impl AnalyticsRowInput {
    pub(crate) fn parse(self) -> async_graphql::Result<DrillRow> {
        Ok(DrillRow {
            time: self.time,
            network: self.network.map(|n| n.0),
            country: self.country.map(|c| c.trim().to_ascii_uppercase()),
            sub_customer: customer_id("row.subCustomerId", self.sub_customer_id.as_ref())?.map(Some),
            label: self.label.map(Some),
            tariff_plan: self.tariff_plan.map(Some),
            rat: self
                .rat
                .map(|r| RadioAccessType::parse(&r).map_err(|e| Error::invalid("row.rat", e.to_string())))
                .transpose()
                .map_err(to_gql)?,
        })
    }
}
