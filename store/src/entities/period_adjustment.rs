use sea_orm::entity::prelude::*;

/// `lines` holds `{"data": [...], "fees": [...]}` with exact decimals as text.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "period_adjustments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub rate_card_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub period_start: Date,
    #[sea_orm(primary_key, auto_increment = false)]
    pub adjusted_period_start: Date,
    pub adjusted_period_end: Date,
    pub tenant_id: Uuid,
    pub kind: String,
    pub basis_records: i64,
    pub lines: Json,
    pub computed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
