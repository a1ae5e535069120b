use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "anomalies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub sim_id: Uuid,
    pub customer_id: Option<Uuid>,
    pub iccid: String,
    pub kind: String,
    pub day: Date,
    pub score: f64,
    pub severity: String,
    pub sentence: String,
    pub evidence: Json,
    /// The new network, country or IMEI; '' for the other kinds.
    pub value: String,
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTimeUtc>,
    pub comment: Option<String>,
    pub dismissed_until: Option<Date>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
