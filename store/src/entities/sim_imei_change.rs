use sea_orm::entity::prelude::*;

/// A SIM's change of device: its sessions reported `to_imei` after `from_imei`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sim_imei_changes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub sim_id: Uuid,
    pub at: DateTimeUtc,
    pub from_imei: String,
    pub to_imei: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
