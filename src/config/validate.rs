//! Checks of values that types alone cannot make; each error names the key and what is allowed.

use super::*;
use anyhow::{bail, Context as _};
use std::net::SocketAddr;

impl Config {
    /// Checks values that types alone cannot; each error names the key and what is allowed.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.listen_addr()?;
        if let Some(url) = &self.database.url {
            if !(url.expose().starts_with("postgres://") || url.expose().starts_with("postgresql://")) {
                bail!("database.url: '{}' must start with postgres:// (leave it unset for the embedded SQLite store)", url.redacted());
            }
        }
        if self.database.max_connections == 0 {
            bail!("database.max_connections: must be at least 1");
        }
        self.http.trusted_proxy_blocks()?;
        if !(1..=600).contains(&self.graphql.ws_init_timeout_seconds) {
            bail!(
                "graphql.ws_init_timeout_seconds: {} is outside 1..=600",
                self.graphql.ws_init_timeout_seconds
            );
        }
        if !(1..=64).contains(&self.graphql.max_concurrent_root_fields) {
            bail!(
                "graphql.max_concurrent_root_fields: {} is outside 1..=64",
                self.graphql.max_concurrent_root_fields
            );
        }
        if !(1..=10_000).contains(&self.graphql.max_subscriptions_per_connection) {
            bail!(
                "graphql.max_subscriptions_per_connection: {} is outside 1..=10000",
                self.graphql.max_subscriptions_per_connection
            );
        }
        if !(1..=1_000_000).contains(&self.http.max_connections) {
            bail!(
                "http.max_connections: {} is outside 1..=1000000",
                self.http.max_connections
            );
        }
        if !(1..=self.http.max_connections).contains(&self.http.max_connections_per_client) {
            bail!(
                "http.max_connections_per_client: {} is outside 1..=http.max_connections ({})",
                self.http.max_connections_per_client,
                self.http.max_connections
            );
        }
        if !(1..=3600).contains(&self.http.header_read_timeout_seconds) {
            bail!(
                "http.header_read_timeout_seconds: {} is outside 1..=3600",
                self.http.header_read_timeout_seconds
            );
        }
        if !(1..=3600).contains(&self.http.body_read_timeout_seconds) {
            bail!(
                "http.body_read_timeout_seconds: {} is outside 1..=3600",
                self.http.body_read_timeout_seconds
            );
        }
        if let Some(url) = &self.clickhouse.url {
            if !(url.expose().starts_with("http://") || url.expose().starts_with("https://")) {
                bail!(
                    "clickhouse.url: '{}' must be the HTTP endpoint, e.g. http://127.0.0.1:8123",
                    url.redacted()
                );
            }
        }
        if let Some(url) = &self.mqtt.url {
            ioto_ingest::telemetry::MqttConfig::parse(url.expose())?;
        }
        if let Some(k) = &self.exports.link_key {
            if k.expose().len() < 32 {
                bail!("exports.link_key: must be at least 32 characters");
            }
        }
        if !(1..=366 * 86_400).contains(&self.exports.retention_seconds) {
            bail!(
                "exports.retention_seconds: {} is outside 1..=31622400 (a year)",
                self.exports.retention_seconds
            );
        }
        if let Some(k) = &self.fleet.secret_key {
            ioto_domain::fleet::SecretCipher::from_base64(k.expose()).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        if !(1..=1_000_000).contains(&self.ingest.batch_max) {
            bail!(
                "ingest.batch_max: {} is outside 1..=1000000",
                self.ingest.batch_max
            );
        }
        if !(1..=60_000).contains(&self.ingest.batch_wait_ms) {
            bail!(
                "ingest.batch_wait_ms: {} is outside 1..=60000",
                self.ingest.batch_wait_ms
            );
        }
        if !(1..=1000).contains(&self.ingest.partitions) {
            bail!(
                "ingest.partitions: {} is outside 1..=1000",
                self.ingest.partitions
            );
        }
        if !(1..=3650).contains(&self.ingest.max_event_age_days) {
            bail!(
                "ingest.max_event_age_days: {} is outside 1..=3650",
                self.ingest.max_event_age_days
            );
        }
        if self.ingest.max_clock_skew_seconds > 86_400 {
            bail!(
                "ingest.max_clock_skew_seconds: {} is outside 0..=86400",
                self.ingest.max_clock_skew_seconds
            );
        }
        if self.ingest.group.trim().is_empty() {
            bail!("ingest.group: must not be empty");
        }
        self.network
            .simulated
            .check("network.simulated.")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if !(1..=10_000).contains(&self.network.max_in_flight) {
            bail!("network.max_in_flight: must be between 1 and 10000");
        }
        let rl = &self.rate_limit;
        for (name, v) in [
            ("caller_points_per_second", rl.caller_points_per_second),
            ("read_only_points_per_second", rl.read_only_points_per_second),
            ("tenant_points_per_second", rl.tenant_points_per_second),
            ("anonymous_points_per_second", rl.anonymous_points_per_second),
            ("burst_seconds", rl.burst_seconds),
        ] {
            if v == 0 {
                bail!("rate_limit.{name}: must be at least 1 (set rate_limit.enabled = false to turn limits off)");
            }
        }
        // Every operation the schema allows must fit in a caller's bucket.
        let smallest = rl
            .read_only_points_per_second
            .min(rl.caller_points_per_second)
            .min(rl.tenant_points_per_second) as usize
            * rl.burst_seconds as usize;
        if rl.enabled && smallest < self.graphql.max_complexity {
            bail!(
                "rate_limit: the smallest bucket ({smallest} points = points per second × burst_seconds) must hold graphql.max_complexity ({}), or the largest allowed query could never run",
                self.graphql.max_complexity
            );
        }
        if self.fleet.counter_compaction_seconds > 86_400 {
            bail!(
                "fleet.counter_compaction_seconds: {} is outside 0..=86400 (0: not on this instance; at most a day)",
                self.fleet.counter_compaction_seconds
            );
        }
        if !(100..=60_000).contains(&self.fleet.quota_evaluate_ms) {
            bail!(
                "fleet.quota_evaluate_ms: {} is outside 100..=60000 (a tenth of a second to a minute)",
                self.fleet.quota_evaluate_ms
            );
        }
        if self.fleet.quota_sweep_seconds > 3_600 {
            bail!(
                "fleet.quota_sweep_seconds: {} is outside 0..=3600 (0: not on this instance; at most an hour)",
                self.fleet.quota_sweep_seconds
            );
        }
        if self.fleet.alert_tick_seconds > 60 {
            bail!(
                "fleet.alert_tick_seconds: {} is outside 0..=60 (0: not on this instance; offline checks run at least every minute)",
                self.fleet.alert_tick_seconds
            );
        }
        if self.fleet.forecast_minutes > 1_440 {
            bail!(
                "fleet.forecast_minutes: {} is outside 0..=1440 (0: not on this instance; forecasts are at least daily)",
                self.fleet.forecast_minutes
            );
        }
        if !(1..=86_400).contains(&self.bulk.network_patience_seconds) {
            bail!("bulk.network_patience_seconds: must be between 1 and 86400 (a day)");
        }
        if self.bulk.lease_seconds < 5 {
            bail!("bulk.lease_seconds: must be at least 5");
        }
        if self.bulk.poll_ms == 0 {
            bail!("bulk.poll_ms: must be at least 1");
        }
        if self.bulk.provision_wait_limit > ioto_domain::fleet::bulk::MAX_BULK_ROWS {
            bail!(
                "bulk.provision_wait_limit: must be at most {}",
                ioto_domain::fleet::bulk::MAX_BULK_ROWS
            );
        }
        if self.notifications.poll_ms == 0 {
            bail!("notifications.poll_ms: must be at least 1");
        }
        if self.notifications.max_attempts == 0 {
            bail!("notifications.max_attempts: must be at least 1");
        }
        if self.notifications.timeout_seconds == 0 {
            bail!("notifications.timeout_seconds: must be at least 1");
        }
        if let Some(url) = &self.smtp.url {
            let u = url.expose();
            if !(u.starts_with("smtp://") || u.starts_with("smtps://")) {
                bail!(
                    "smtp.url: '{}' must start with smtp:// or smtps://",
                    url.redacted()
                );
            }
        }
        if self.smtp.from.parse::<lettre::message::Mailbox>().is_err() {
            bail!(
                "smtp.from: '{}' is not a mailbox; write it like 'Ioto <noreply@example.com>'",
                self.smtp.from
            );
        }
        if self.fleet.import_max_bytes < 1024 {
            bail!("fleet.import_max_bytes: must be at least 1024");
        }
        match self.auth.algorithm {
            JwtAlgorithm::HS256 => {
                if let Some(s) = &self.auth.jwt_secret {
                    if s.expose().len() < 32 {
                        bail!("auth.jwt_secret: must be at least 32 bytes for HS256");
                    }
                }
            }
            JwtAlgorithm::RS256 | JwtAlgorithm::ES256 => {
                if self.auth.public_key_pem.is_none() && self.auth.jwks_url.is_none() {
                    bail!(
                        "auth: {} needs auth.public_key_pem or auth.jwks_url to verify tokens",
                        self.auth.algorithm
                    );
                }
            }
        }
        if self.auth.token_ttl_minutes == 0 {
            bail!("auth.token_ttl_minutes: must be at least 1");
        }
        if !(1..=24 * 60).contains(&self.auth.access_token_minutes) {
            bail!(
                "auth.access_token_minutes: {} is not allowed; 1 to 1440 (a day)",
                self.auth.access_token_minutes
            );
        }
        if !(1..=366).contains(&self.auth.session_days) {
            bail!(
                "auth.session_days: {} is not allowed; 1 to 366",
                self.auth.session_days
            );
        }
        if self.auth.session_idle_hours * 60 <= self.auth.access_token_minutes
            || self.auth.session_idle_hours > self.auth.session_days * 24
        {
            bail!(
                "auth.session_idle_hours: {} is not allowed; longer than an access token (auth.access_token_minutes: {} min) and at most auth.session_days × 24 ({})",
                self.auth.session_idle_hours,
                self.auth.access_token_minutes,
                self.auth.session_days * 24
            );
        }
        if self.graphql.max_depth == 0
            || self.graphql.max_complexity == 0
            || self.graphql.body_limit_bytes < 1024
        {
            bail!("graphql: max_depth and max_complexity must be at least 1, body_limit_bytes at least 1024");
        }
        for origin in &self.http.cors_origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                bail!("http.cors_origins: '{origin}' must be an origin like https://app.example.com, or *");
            }
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listen.parse().with_context(|| {
            format!(
                "listen: '{}' is not a socket address like 127.0.0.1:8080",
                self.listen
            )
        })
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> anyhow::Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }
}
