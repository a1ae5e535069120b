use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alerts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub rule_id: Uuid,
    pub subject_key: String,
    pub subject: String,
    pub sim_id: Option<Uuid>,
    pub customer_id: Option<Uuid>,
    pub severity: String,
    pub state: String,
    pub value: i64,
    pub started_at: DateTimeUtc,
    pub fired_at: Option<DateTimeUtc>,
    pub resolved_at: Option<DateTimeUtc>,
    pub last_seen_at: DateTimeUtc,
    pub repeats: i32,
    pub flaps: i32,
    pub event_key: Option<String>,
    pub detail: Option<String>,
    pub ack_by: Option<String>,
    pub ack_at: Option<DateTimeUtc>,
    pub ack_comment: Option<String>,
    pub announced: String,
    pub announced_at: Option<DateTimeUtc>,
    pub announce_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
