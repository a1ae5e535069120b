use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_forecasts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    /// `SIM`, `CUSTOMER`, `TENANT` or `POOL`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject_kind: String,
    /// The tenant's own id for `TENANT`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject_id: Uuid,
    pub computed_at: DateTimeUtc,
    pub history_days: i32,
    pub method: String,
    pub backtest_mase: Option<f64>,
    pub backtest_wape: Option<f64>,
    /// `{"start": "YYYY-MM-DD", "points": [[expected, low80, high80, low95, high95], …]}`.
    pub days: Json,
    pub quota_limit_bytes: Option<i64>,
    pub used_bytes: Option<i64>,
    pub exhaustion_likely: Option<Date>,
    pub exhaustion_earliest: Option<Date>,
    pub exhaustion_latest: Option<Date>,
    pub period_end: Option<Date>,
    pub projected_period_bytes: Option<i64>,
    pub projected_period_bytes_hi80: Option<i64>,
    /// The projected cost (a tenant with a retail card): its currency and exact decimals as text.
    pub cost_currency: Option<String>,
    pub cost_so_far: Option<String>,
    pub projected_cost: Option<String>,
    pub projected_cost_high80: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
