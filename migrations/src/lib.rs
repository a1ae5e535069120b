#![doc = include_str!("../README.md")]

mod m0001_directory;
mod sql_migration;

use sql_migration::SqlMigration;

use sea_orm_migration::prelude::*;
pub use sea_orm_migration::prelude::{DbErr, MigratorTrait};

/// Name of the Postgres role the server works as. It owns no table, so row-level security applies.
pub const APP_ROLE: &str = "ioto_app";

/// The Postgres SQL of every transactional migration, in order (test templates fingerprint it).
pub const POSTGRES_SQL: &[&str] = &[
    include_str!("sql/0001_postgres.sql"),
    include_str!("sql/0002_postgres.sql"),
    include_str!("sql/0003_postgres.sql"),
    include_str!("sql/0004_postgres.sql"),
    include_str!("sql/0005_postgres.sql"),
    include_str!("sql/0006_postgres.sql"),
    include_str!("sql/0007_postgres.sql"),
    include_str!("sql/0008_postgres.sql"),
    include_str!("sql/0009_postgres.sql"),
    include_str!("sql/0010_postgres.sql"),
    include_str!("sql/0011_postgres.sql"),
    include_str!("sql/0012_postgres.sql"),
    include_str!("sql/0013_postgres.sql"),
    include_str!("sql/0014_postgres.sql"),
    include_str!("sql/0015_postgres.sql"),
    include_str!("sql/0016_postgres.sql"),
    include_str!("sql/0017_postgres.sql"),
    include_str!("sql/0018_postgres.sql"),
    include_str!("sql/0019_postgres.sql"),
    include_str!("sql/0020_postgres.sql"),
    include_str!("sql/0021_postgres.sql"),
    include_str!("sql/0022_postgres.sql"),
    include_str!("sql/0023_postgres.sql"),
    include_str!("sql/0024_postgres.sql"),
    include_str!("sql/0025_postgres.sql"),
];

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_directory::Migration),
            // Fleet: devices, SIM details and bindings, labels, audit trail, scheduled transitions.
            Box::new(SqlMigration {
                name: "m0002_fleet",
                postgres: include_str!("sql/0002_postgres.sql"),
                sqlite: include_str!("sql/0002_sqlite.sql"),
                irreversible: "it would drop devices and the audit trail",
            }),
            // When a user's credentials last changed: tokens issued before then stop working.
            Box::new(SqlMigration {
                name: "m0003_credentials",
                postgres: include_str!("sql/0003_postgres.sql"),
                sqlite: include_str!("sql/0003_sqlite.sql"),
                irreversible: "tokens issued before a password change would work again",
            }),
            // Rate cards, rating runs and closed billing periods.
            Box::new(SqlMigration {
                name: "m0004_billing",
                postgres: include_str!("sql/0004_postgres.sql"),
                sqlite: include_str!("sql/0004_sqlite.sql"),
                irreversible: "rating runs and closed periods are financial records",
            }),
            // Adjustments: late usage of closed billing periods, charged in a later period.
            Box::new(SqlMigration {
                name: "m0005_adjustments",
                postgres: include_str!("sql/0005_postgres.sql"),
                sqlite: include_str!("sql/0005_sqlite.sql"),
                irreversible: "adjustments are financial records",
            }),
            // Bulk jobs and their rows; the operator's bulk limit per tenant.
            Box::new(SqlMigration {
                name: "m0006_bulk_jobs",
                postgres: include_str!("sql/0006_postgres.sql"),
                sqlite: include_str!("sql/0006_sqlite.sql"),
                irreversible: "bulk jobs are the record of what was sent to the network",
            }),
            // Notifications, webhook endpoints and their deliveries.
            Box::new(SqlMigration {
                name: "m0007_notifications",
                postgres: include_str!("sql/0007_postgres.sql"),
                sqlite: include_str!("sql/0007_sqlite.sql"),
                irreversible: "notifications and deliveries are what users were told",
            }),
            // Export jobs.
            Box::new(SqlMigration {
                name: "m0008_export_jobs",
                postgres: include_str!("sql/0008_postgres.sql"),
                sqlite: include_str!("sql/0008_sqlite.sql"),
                irreversible: "export jobs are the record of what was downloaded",
            }),
            // Dashboard counters: SIMs per state and tariff plan, activations per 15 minutes.
            Box::new(SqlMigration {
                name: "m0009_dashboard_counters",
                postgres: include_str!("sql/0009_postgres.sql"),
                sqlite: include_str!("sql/0009_sqlite.sql"),
                irreversible: "the dashboard reads its SIM counts and activations from these counters",
            }),
            // Bulk job rows: their job is checked once per statement, not once per row.
            Box::new(SqlMigration {
                name: "m0010_bulk_row_job_check",
                postgres: include_str!("sql/0010_postgres.sql"),
                sqlite: include_str!("sql/0010_sqlite.sql"),
                irreversible: "rows written since would be checked again by a per-row foreign key",
            }),
            // SIMs: their tenant and sub-customer are checked once per inserted statement.
            Box::new(SqlMigration {
                name: "m0011_sim_owner_check",
                postgres: include_str!("sql/0011_postgres.sql"),
                sqlite: include_str!("sql/0011_sqlite.sql"),
                irreversible: "SIMs written since would be checked again by per-row foreign keys",
            }),
            // SIM identifiers compare byte by byte (collation "C"), whatever the database's locale.
            Box::new(SqlMigration {
                name: "m0012_sim_identifiers_bytewise",
                postgres: include_str!("sql/0012_postgres.sql"),
                sqlite: include_str!("sql/0012_sqlite.sql"),
                irreversible: "going back to the locale's comparisons would only make the indexes slower",
            }),
            // Imports stage new SIMs in a temporary table: the server's role may create one.
            Box::new(SqlMigration {
                name: "m0013_import_staging",
                postgres: include_str!("sql/0013_postgres.sql"),
                sqlite: include_str!("sql/0013_sqlite.sql"),
                irreversible: "imports stage their rows in a temporary table and need the grant",
            }),
            // Data quotas per SIM and their periods; the tenant's time zone; notification kinds
            // of quotas and alerts.
            Box::new(SqlMigration {
                name: "m0014_quotas",
                postgres: include_str!("sql/0014_postgres.sql"),
                sqlite: include_str!("sql/0014_sqlite.sql"),
                irreversible: "quota periods record what SIMs were warned of and suspended for",
            }),
            // Alert rules, alerts and silences; the channels a notification speaks on.
            Box::new(SqlMigration {
                name: "m0015_alerts",
                postgres: include_str!("sql/0015_postgres.sql"),
                sqlite: include_str!("sql/0015_sqlite.sql"),
                irreversible: "alerts record what people were told",
            }),
            // The IMEI a SIM was last seen with.
            Box::new(SqlMigration {
                name: "m0016_last_imei",
                postgres: include_str!("sql/0016_postgres.sql"),
                sqlite: include_str!("sql/0016_sqlite.sql"),
                irreversible: "the last IMEI seen is what IMEI-change alerts compare against",
            }),
            // Quota defaults per tenant and tariff plan; the resume at a period's end.
            Box::new(SqlMigration {
                name: "m0017_quota_defaults",
                postgres: include_str!("sql/0017_postgres.sql"),
                sqlite: include_str!("sql/0017_sqlite.sql"),
                irreversible: "SIMs would lose the quotas their defaults gave them",
            }),
            // The telemetry trigger: the sensor an alert rule reads and its limits.
            Box::new(SqlMigration {
                name: "m0018_telemetry_rules",
                postgres: include_str!("sql/0018_postgres.sql"),
                sqlite: include_str!("sql/0018_sqlite.sql"),
                irreversible: "telemetry rules would lose what they watch",
            }),
            // Quota pools: one data limit shared by a sub-customer's SIMs or a label selection.
            Box::new(SqlMigration {
                name: "m0019_quota_pools",
                postgres: include_str!("sql/0019_postgres.sql"),
                sqlite: include_str!("sql/0019_sqlite.sql"),
                irreversible: "pool periods record what SIMs were warned of and suspended for",
            }),
            // Forecasts per SIM, sub-customer, tenant and pool; anomalies and what people
            // decided about them; the claims of the forecast pass; the ANOMALY notification kind.
            Box::new(SqlMigration {
                name: "m0020_forecasts",
                postgres: include_str!("sql/0020_postgres.sql"),
                sqlite: include_str!("sql/0020_sqlite.sql"),
                irreversible: "forecasts are recomputed, but anomalies record what people dismissed",
            }),
            // The alert triggers on forecasts and anomalies (an ANOMALY rule's kinds and least
            // severity); the SIMs' changes of device, for IMEI_CHANGE anomalies.
            Box::new(SqlMigration {
                name: "m0021_forecast_alerts",
                postgres: include_str!("sql/0021_postgres.sql"),
                sqlite: include_str!("sql/0021_sqlite.sql"),
                irreversible:
                    "anomaly rules would lose which anomalies they hear of, SIMs their device history",
            }),
            // Quota and plan advice per SIM and pool; the projected cost of forecasts.
            Box::new(SqlMigration {
                name: "m0022_advice",
                postgres: include_str!("sql/0022_postgres.sql"),
                sqlite: include_str!("sql/0022_sqlite.sql"),
                irreversible: "forecasts are read with their projected-cost columns",
            }),
            // API keys; the audit trail records them.
            Box::new(SqlMigration {
                name: "m0023_api_keys",
                postgres: include_str!("sql/0023_postgres.sql"),
                sqlite: include_str!("sql/0023_sqlite.sql"),
                irreversible: "API keys would be lost and their audit entries refused",
            }),
            // Sign-in sessions and their refresh tokens.
            Box::new(SqlMigration {
                name: "m0024_sessions",
                postgres: include_str!("sql/0024_postgres.sql"),
                sqlite: include_str!("sql/0024_sqlite.sql"),
                irreversible: "every signed-in session would end",
            }),
            // Second factors, recovery codes, sign-in challenges; a tenant's requirement.
            Box::new(SqlMigration {
                name: "m0025_mfa",
                postgres: include_str!("sql/0025_postgres.sql"),
                sqlite: include_str!("sql/0025_sqlite.sql"),
                irreversible: "second factors would be lost, and signing in would skip them",
            }),
        ]
    }
}

/// One versioned usage-store migration (ClickHouse or the embedded SQLite store): statements
/// run in order.
#[derive(Debug, Clone, Copy)]
pub struct UsageMigration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

impl UsageMigration {
    /// The statements of this migration, split on `;` at line ends, with `{{TTL expr}}` rendered
    /// as a TTL clause when `ttl_supported`, and removed otherwise.
    pub fn statements(&self, ttl_supported: bool) -> Vec<String> {
        self.sql
            .split(";\n")
            .map(|s| render_ttl(s.trim(), ttl_supported))
            .filter(|s| {
                !s.is_empty()
                    && !s
                        .lines()
                        .all(|l| l.trim().is_empty() || l.trim().starts_with("--"))
            })
            .collect()
    }

    /// [`Self::statements`] for the ClickHouse database `database`: `{{DATABASE}}` becomes its
    /// name as a string literal (a Buffer table names its store's database, and
    /// `currentDatabase()` there would be evaluated again when the server loads the table).
    pub fn statements_in(&self, ttl_supported: bool, database: &str) -> Vec<String> {
        let literal = format!("'{}'", database.replace('\\', "\\\\").replace('\'', "\\'"));
        self.statements(ttl_supported)
            .into_iter()
            .map(|s| s.replace("{{DATABASE}}", &literal))
            .collect()
    }
}

/// The first new name of a `RENAME TABLE a TO b, …` statement (`b`), None for other statements:
/// the usage-store runner does not run such a statement again once `b` exists.
pub fn renamed_to(stmt: &str) -> Option<&str> {
    let body = stmt
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .find(|l| !l.trim().is_empty())?
        .trim()
        .strip_prefix("RENAME TABLE ")?;
    match body.split(',').next()?.split_whitespace().collect::<Vec<_>>()[..] {
        [_, "TO", to] => Some(to),
        _ => None,
    }
}

fn render_ttl(stmt: &str, ttl_supported: bool) -> String {
    let mut out = stmt.to_owned();
    while let Some(start) = out.find("{{TTL ") {
        let Some(len) = out[start..].find("}}") else { break };
        let expr = out[start + 6..start + len].trim().to_owned();
        let replacement = if ttl_supported {
            format!("TTL {expr}")
        } else {
            String::new()
        };
        out.replace_range(start..start + len + 2, &replacement);
    }
    out.trim_end_matches(';').trim().to_owned()
}

/// Every ClickHouse migration, in version order.
pub const CLICKHOUSE: &[UsageMigration] = &[
    UsageMigration {
        version: 1,
        name: "usage_daily",
        sql: include_str!("../clickhouse/0001_usage_daily.sql"),
    },
    UsageMigration {
        version: 2,
        name: "session_landing",
        sql: include_str!("../clickhouse/0002_session_landing.sql"),
    },
    UsageMigration {
        version: 3,
        name: "session_pipeline",
        sql: include_str!("../clickhouse/0003_session_pipeline.sql"),
    },
    UsageMigration {
        version: 4,
        name: "billing_customers_telemetry",
        sql: include_str!("../clickhouse/0004_billing_customers_telemetry.sql"),
    },
    UsageMigration {
        version: 5,
        name: "drop_session_landing",
        sql: include_str!("../clickhouse/0005_drop_session_landing.sql"),
    },
    UsageMigration {
        version: 6,
        name: "rated_usage",
        sql: include_str!("../clickhouse/0006_rated_usage.sql"),
    },
    UsageMigration {
        version: 7,
        name: "sessions_hourly",
        sql: include_str!("../clickhouse/0007_sessions_hourly.sql"),
    },
    UsageMigration {
        version: 8,
        name: "network_monthly_online",
        sql: include_str!("../clickhouse/0008_network_monthly_online.sql"),
    },
    UsageMigration {
        version: 9,
        name: "live_session_states",
        sql: include_str!("../clickhouse/0009_live_session_states.sql"),
    },
    UsageMigration {
        version: 10,
        name: "drop_live_sessions",
        sql: include_str!("../clickhouse/0010_drop_live_sessions.sql"),
    },
    UsageMigration {
        version: 11,
        name: "rated_uuid",
        sql: include_str!("../clickhouse/0011_rated_uuid.sql"),
    },
    UsageMigration {
        version: 12,
        name: "buffered_cubes",
        sql: include_str!("../clickhouse/0012_buffered_cubes.sql"),
    },
    UsageMigration {
        version: 13,
        name: "sim_daily",
        sql: include_str!("../clickhouse/0013_sim_daily.sql"),
    },
];

/// The embedded usage store's migrations (SQLite), numbered like the ClickHouse ones they mirror.
pub const EMBEDDED_USAGE: &[UsageMigration] = &[
    UsageMigration {
        version: 1,
        name: "usage_daily",
        sql: include_str!("../embedded/0001_usage_daily.sql"),
    },
    UsageMigration {
        version: 2,
        name: "session_landing",
        sql: include_str!("../embedded/0002_session_landing.sql"),
    },
    UsageMigration {
        version: 3,
        name: "session_pipeline",
        sql: include_str!("../embedded/0003_session_pipeline.sql"),
    },
    UsageMigration {
        version: 4,
        name: "billing_customers_telemetry",
        sql: include_str!("../embedded/0004_billing_customers_telemetry.sql"),
    },
    UsageMigration {
        version: 5,
        name: "drop_session_landing",
        sql: include_str!("../embedded/0005_drop_session_landing.sql"),
    },
    UsageMigration {
        version: 6,
        name: "rated_usage",
        sql: include_str!("../embedded/0006_rated_usage.sql"),
    },
    UsageMigration {
        version: 7,
        name: "sessions_hourly",
        sql: include_str!("../embedded/0007_sessions_hourly.sql"),
    },
    UsageMigration {
        version: 8,
        name: "network_monthly_online",
        sql: include_str!("../embedded/0008_network_monthly_online.sql"),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_placeholder_renders_by_server_capability() {
        let m = UsageMigration {
            version: 9,
            name: "t",
            sql: "CREATE TABLE t (d Date) ENGINE = MergeTree ORDER BY d {{TTL d + INTERVAL 7 DAY}};\n",
        };
        assert_eq!(
            m.statements(true),
            vec!["CREATE TABLE t (d Date) ENGINE = MergeTree ORDER BY d TTL d + INTERVAL 7 DAY"]
        );
        assert_eq!(
            m.statements(false),
            vec!["CREATE TABLE t (d Date) ENGINE = MergeTree ORDER BY d"]
        );
    }

    #[test]
    fn database_placeholder_renders_as_a_string_literal() {
        let m = UsageMigration {
            version: 12,
            name: "t",
            sql: "CREATE TABLE b AS t ENGINE = Buffer({{DATABASE}}, 't', 1, 1, 1, 1, 1, 1, 1);\n",
        };
        assert_eq!(
            m.statements_in(false, "ioto_x"),
            vec!["CREATE TABLE b AS t ENGINE = Buffer('ioto_x', 't', 1, 1, 1, 1, 1, 1, 1)"]
        );
        assert!(m.statements_in(false, "a'b")[0].contains("Buffer('a\\'b', "));
    }

    #[test]
    fn a_rename_names_its_first_new_name() {
        assert_eq!(
            renamed_to("-- why\nRENAME TABLE a TO a_store, a_incoming TO a"),
            Some("a_store")
        );
        assert_eq!(renamed_to("RENAME TABLE x TO y"), Some("y"));
        assert_eq!(renamed_to("DROP TABLE IF EXISTS a_incoming"), None);
        assert_eq!(renamed_to("-- RENAME TABLE a TO b\nSELECT 1"), None);
    }

    #[test]
    fn versions_are_strictly_increasing() {
        for list in [CLICKHOUSE, EMBEDDED_USAGE] {
            assert!(list.windows(2).all(|w| w[0].version < w[1].version));
            assert!(list.iter().all(|m| !m.statements(false).is_empty()));
        }
        // The embedded store mirrors the ClickHouse versions it needs, under the same names.
        for (e, c) in EMBEDDED_USAGE.iter().zip(CLICKHOUSE) {
            assert_eq!((e.version, e.name), (c.version, c.name));
        }
    }
}
