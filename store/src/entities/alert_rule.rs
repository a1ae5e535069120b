use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_rules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub severity: String,
    pub target_kind: String,
    pub target_customer_id: Option<Uuid>,
    pub target_labels: Option<Json>,
    pub target_tariff_plan: Option<String>,
    pub target_sim_id: Option<Uuid>,
    pub metric: String,
    pub threshold: Option<i64>,
    pub clear_threshold: Option<i64>,
    pub state: Option<String>,
    /// TELEMETRY_ABOVE and TELEMETRY_BELOW: the sensor read (`TEMPERATURE`, …) and the limits,
    /// in hundredths of the sensor's unit (3550 is 35.5 °C; negative below zero).
    pub telemetry_field: Option<String>,
    pub telemetry_value: Option<i64>,
    pub telemetry_clear_value: Option<i64>,
    /// ANOMALY: the kinds heard of, comma-separated (empty: every kind), and the least severity.
    pub anomaly_kinds: Option<String>,
    pub anomaly_min_severity: Option<String>,
    pub in_app: bool,
    pub webhook: bool,
    pub emails: String,
    pub pending_seconds: i32,
    pub group_wait_seconds: i32,
    pub group_interval_seconds: i32,
    pub repeat_seconds: i32,
    pub resolve_after_seconds: i32,
    pub announced_at: Option<DateTimeUtc>,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
