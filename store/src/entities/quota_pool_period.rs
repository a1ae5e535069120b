use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "quota_pool_periods")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub pool_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub period_start: DateTimeUtc,
    pub tenant_id: Uuid,
    pub period_end: DateTimeUtc,
    pub used_bytes: i64,
    /// Member SIMs when last evaluated.
    pub sims: i64,
    pub stage: i16,
    pub exceeded_at: Option<DateTimeUtc>,
    pub action_state: String,
    pub action_reason: Option<String>,
    pub bulk_job_id: Option<Uuid>,
    pub resume_state: String,
    pub resume_reason: Option<String>,
    pub resume_job_id: Option<Uuid>,
    pub claimed_until: Option<DateTimeUtc>,
    pub evaluated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
