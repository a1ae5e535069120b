//! The decisions about anomalies.

use async_graphql::{Context, Object, ID};

use super::{parse_anomaly_id, AnomalyObject};
use crate::context::{actor, services};
use crate::error::GqlResult;
use crate::scalars::Date;

#[derive(Default)]
pub struct ForecastMutation;

#[Object]
impl ForecastMutation {
    /// Dismisses an anomaly as expected behaviour. From the next pass on, the detector accepts
    /// on the SIM the level of a dismissed usage spike (a day up to 1.25 × it is no spike), the
    /// network or country of a dismissed new network or country, and any silence or session
    /// storm when one of those is dismissed — up to `until` (included; today to a year ahead) or
    /// for good. Fleet managers; another tenant's anomaly is NOT_FOUND.
    async fn dismiss_anomaly(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(desc = "Why (at most 500 characters).")] comment: Option<String>,
        until: Option<Date>,
    ) -> async_graphql::Result<AnomalyObject> {
        let id = parse_anomaly_id(&id)?;
        let anomaly = services(ctx)
            .forecasts
            .dismiss_anomaly(actor(ctx)?, id, comment, until.map(|d| d.0))
            .await
            .gql()?;
        Ok(AnomalyObject(anomaly))
    }

    /// Confirms an anomaly as a real problem (the detector raises its like as before). Fleet
    /// managers; another tenant's anomaly is NOT_FOUND.
    async fn confirm_anomaly(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(desc = "What was found (at most 500 characters).")] comment: Option<String>,
    ) -> async_graphql::Result<AnomalyObject> {
        let id = parse_anomaly_id(&id)?;
        let anomaly = services(ctx)
            .forecasts
            .confirm_anomaly(actor(ctx)?, id, comment)
            .await
            .gql()?;
        Ok(AnomalyObject(anomaly))
    }
}
