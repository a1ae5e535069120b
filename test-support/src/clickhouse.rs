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

/// Runs one statement in `config`'s database over HTTP, asserting that ClickHouse accepted it,
/// and returns its answer (for statements the adapter has no call for: renaming a table away,
/// counting what a bench left behind, setting up an older schema).
pub async fn sql(config: &ClickHouseConfig, statement: &str) -> String {
    let answer = reqwest::Client::new()
        .post(&config.url)
        .query(&[("database", config.database.as_str())])
        .body(statement.to_owned())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
    let ok = answer.status().is_success();
    let text = answer.text().await.unwrap_or_else(|e| panic!("{statement}: {e}"));
    assert!(ok, "{statement}: {text}");
    text
}
