use sea_orm::entity::prelude::*;

/// Money is exact decimals as text; `saving_rank` the saving in whole millionths (what lists sort by).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "advice")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// `SIM` or `POOL`.
    pub subject_kind: String,
    pub subject_id: Uuid,
    pub iccid: Option<String>,
    pub customer_id: Option<Uuid>,
    pub kind: String,
    pub action: String,
    pub current_plan: Option<String>,
    pub recommended_plan: Option<String>,
    pub current_limit_bytes: Option<i64>,
    pub recommended_limit_bytes: Option<i64>,
    pub current_cost: Option<String>,
    pub recommended_cost: Option<String>,
    pub saving: Option<String>,
    pub saving_rank: i64,
    pub currency: Option<String>,
    pub sentence: String,
    pub plain_sentence: String,
    pub window_from: Date,
    pub window_to: Date,
    pub computed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
