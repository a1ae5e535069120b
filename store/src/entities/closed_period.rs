use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "closed_periods")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub rate_card_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub period_start: Date,
    pub tenant_id: Uuid,
    pub kind: String,
    pub run_id: Uuid,
    pub closed_at: DateTimeUtc,
    pub closed_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
