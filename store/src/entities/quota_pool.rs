use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "quota_pools")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    /// A sub-customer's pool: its SIMs are the members.
    pub customer_id: Option<Uuid>,
    /// A label pool: `[{"key": …, "value": … or null}, …]`, every condition to hold.
    pub labels: Option<Json>,
    pub limit_bytes: i64,
    pub stages: String,
    pub action: String,
    pub resume_next_period: bool,
    pub set_by: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
