use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sims")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub customer_id: Option<Uuid>,
    pub iccid: String,
    pub imsi: String,
    pub msisdn: Option<String>,
    pub state: String,
    pub created_at: DateTimeUtc,
    pub sim_type: String,
    pub tariff_plan: Option<String>,
    pub labels: Json,
    pub device_id: Option<Uuid>,
    pub pin_sealed: Option<String>,
    pub puk_sealed: Option<String>,
    pub activation_code: Option<String>,
    pub last_network: Option<String>,
    pub last_activity_at: Option<DateTimeUtc>,
    pub last_imei: Option<String>,
    pub import_id: Option<Uuid>,
    pub version: i64,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
