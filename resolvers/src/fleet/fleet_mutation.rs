//! Fleet-wide mutations: inventory import, label suggestions and the tenant's fleet settings.

use super::mutation::*;
use crate::context::{actor, services};
use crate::enums::TableFormatKind;
use crate::error::{to_gql, GqlResult};
use crate::fleet::{FleetSettingsObject, ImportReportObject, LabelSuggestionObject};
use crate::scalars::parse_tenant;
use async_graphql::{Context, InputObject, Object, ID};
use base64::Engine as _;
use ioto_app::fleet::ImportRequest;
use ioto_domain::fleet::import::TableFormat;
use ioto_domain::Error;

#[derive(InputObject)]
pub struct ImportSimsInput {
    pub tenant_id: Option<ID>,
    /// Every imported SIM goes to this sub-customer (default: the tenant itself).
    pub customer_id: Option<ID>,
    pub format: TableFormatKind,
    /// The file: CSV as text, XLSX as base64. Columns: iccid, imsi (required), msisdn, pin, puk,
    /// type, tariff_plan, activation_code. For large files use `POST /imports/sims`.
    pub content: String,
    /// false (default): check only and report; true: create the SIMs.
    pub commit: Option<bool>,
    /// With `commit`: create the good rows even when others have errors (default false).
    pub skip_invalid: Option<bool>,
    pub note: Option<String>,
}

#[derive(Default)]
pub struct FleetWideMutation;

#[Object]
impl FleetWideMutation {
    /// Checks an inventory file and reports every bad row; with `commit: true` creates the SIMs
    /// (all or nothing; each gets an IMPORTED audit entry).
    async fn import_sims(
        &self,
        ctx: &Context<'_>,
        input: ImportSimsInput,
    ) -> async_graphql::Result<ImportReportObject> {
        let format: TableFormat = input.format.into();
        let bytes = match format {
            TableFormat::Csv => input.content.into_bytes(),
            TableFormat::Xlsx => base64::engine::general_purpose::STANDARD
                .decode(input.content.trim())
                .map_err(|_| to_gql(Error::invalid("content", "an XLSX file must be sent as base64")))?,
        };
        let req = ImportRequest {
            tenant_id: parse_tenant(input.tenant_id.as_ref())?,
            customer_id: customer(input.customer_id.as_ref(), "customerId")?,
            format,
            bytes,
            commit: input.commit.unwrap_or(false),
            skip_invalid: input.skip_invalid.unwrap_or(false),
            note: input.note,
        };
        let report = services(ctx).fleet.import_sims(actor(ctx)?, req).await.gql()?;
        Ok(report.into())
    }

    /// Adds or replaces a suggested label key (with values) in the tenant's catalogue.
    async fn put_label_suggestion(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        key: String,
        values: Option<Vec<String>>,
        description: Option<String>,
    ) -> async_graphql::Result<LabelSuggestionObject> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let s = services(ctx)
            .fleet
            .put_label_suggestion(
                actor(ctx)?,
                tenant,
                &key,
                &values.unwrap_or_default(),
                description.as_deref(),
            )
            .await
            .gql()?;
        Ok(s.into())
    }

    async fn remove_label_suggestion(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        key: String,
    ) -> async_graphql::Result<bool> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        services(ctx)
            .fleet
            .remove_label_suggestion(actor(ctx)?, tenant, &key)
            .await
            .gql()?;
        Ok(true)
    }

    /// TENANT_ADMIN: whether sub-customer users see SIMs (and usage) or devices only, and
    /// whether they see the cost of their usage, and how many SIMs an OPERATOR may change in one
    /// bulk job (0 to 1,000,000), the tenant's time zone (an IANA name; data quotas count
    /// its calendar months), and whether every user signs in with a second factor
    /// (`requireMfa`; users without one set it up at their next sign-in). A setting left out
    /// keeps its value.
    #[expect(clippy::too_many_arguments, reason = "GraphQL arguments")]
    async fn set_fleet_settings(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        customers_see_sims: Option<bool>,
        customers_see_costs: Option<bool>,
        operator_bulk_limit: Option<i32>,
        time_zone: Option<String>,
        require_mfa: Option<bool>,
    ) -> async_graphql::Result<FleetSettingsObject> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let fleet = &services(ctx).fleet;
        let actor = actor(ctx)?;
        let mut settings = fleet.settings(actor, tenant).await.gql()?;
        if let Some(v) = customers_see_sims {
            settings.customers_see_sims = v;
        }
        if let Some(v) = customers_see_costs {
            settings.customers_see_costs = v;
        }
        if let Some(v) = operator_bulk_limit {
            settings.operator_bulk_limit =
                u32::try_from(v).ok().filter(|v| *v <= 1_000_000).ok_or_else(|| {
                    crate::to_gql(ioto_domain::Error::invalid(
                        "operatorBulkLimit",
                        "must be between 0 and 1000000",
                    ))
                })?;
        }
        if let Some(v) = require_mfa {
            settings.require_mfa = v;
        }
        if let Some(zone) = time_zone {
            settings.time_zone = ioto_app::analytics::parse_time_zone("timeZone", Some(&zone)).gql()?;
        }
        let s = fleet.set_settings(actor, tenant, settings).await.gql()?;
        Ok(s.into())
    }
}
