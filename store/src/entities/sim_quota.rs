use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sim_quotas")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub sim_id: Uuid,
    pub limit_bytes: i64,
    pub stages: String,
    pub action: String,
    pub resume_next_period: bool,
    pub set_by: String,
    /// `SIM`, `TARIFF_PLAN` or `TENANT`.
    pub source: String,
    /// The default a `TARIFF_PLAN` or `TENANT` quota follows.
    pub default_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
