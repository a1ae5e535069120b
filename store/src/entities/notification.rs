use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub recipient: Option<Uuid>,
    pub kind: String,
    pub subject_id: Uuid,
    pub title: String,
    pub body: String,
    pub payload: Json,
    pub created_at: DateTimeUtc,
    pub read_at: Option<DateTimeUtc>,
    pub dispatched_at: Option<DateTimeUtc>,
    pub in_app: bool,
    pub webhook: bool,
    pub email_to: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
