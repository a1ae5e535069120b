//! sea-orm entities, one per table. Rows convert into domain types in `convert.rs`.

pub mod alert;
pub mod alert_rule;
pub mod alert_silence;
pub mod audit_event;
pub mod bulk_job;
pub mod bulk_job_row;
pub mod closed_period;
pub mod customer;
pub mod device;
pub mod export_job;
pub mod invoice_charge;
pub mod label_suggestion;
pub mod notification;
pub mod notification_delivery;
pub mod period_adjustment;
pub mod rate_card;
pub mod rate_card_version;
pub mod rating_run;
pub mod scheduled_transition;
pub mod sim;
pub mod sim_quota;
pub mod sim_quota_period;
pub mod tenant;
pub mod user;
pub mod webhook_endpoint;
