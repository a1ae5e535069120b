//! Per-test ClickHouse databases.

use ioto_analytics::{ClickHouseConfig, ClickHouseUsage};

use crate::{env_or, unique};

pub fn url() -> String {
    env_or("IOTO_TEST_CLICKHOUSE_URL", "http://127.0.0.1:8123")
}

/// A fresh, empty database (not migrated).
pub async fn database() -> ClickHouseConfig {
    let config = ClickHouseConfig {
        url: url(),
        database: unique("ioto_test"),
        user: None,
        password: None,
    };
    ClickHouseUsage::create_database(&config).await.unwrap_or_else(|e| {
        panic!("ClickHouse is not reachable at {} ({e}); start it with scripts/engines.sh or set IOTO_TEST_CLICKHOUSE_URL", config.url)
    });
    config
}
