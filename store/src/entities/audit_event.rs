use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub tenant_id: Uuid,
    pub customer_id: Option<Uuid>,
    pub entity_kind: String,
    pub entity_id: Uuid,
    pub entity_ref: String,
    pub action: String,
    pub actor: String,
    pub actor_user_id: Option<Uuid>,
    pub at: DateTimeUtc,
    pub old_value: Option<Json>,
    pub new_value: Option<Json>,
    pub note: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
