//! Device readings: one row per device and time (`ReplacingMergeTree`, read with `FINAL`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ioto_domain::ports::TelemetryStore;
use ioto_domain::usage::TelemetryReading;
use ioto_domain::{DeviceId, Result, TenantId};

use super::rows::{secs, time, TelemetryRow};
use super::ClickHouseUsage;
use crate::date_to_days;

#[async_trait]
impl TelemetryStore for ClickHouseUsage {
    async fn write_telemetry(&self, readings: &[(TenantId, TelemetryReading)]) -> Result<()> {
        if readings.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::with_capacity(readings.len());
        for (tenant, r) in readings {
            rows.push(TelemetryRow {
                tenant_id: tenant.to_string(),
                device_id: r.device_id.to_string(),
                at: secs(r.at)?,
                day: date_to_days(r.at.date_naive())?,
                temperature_c: r.temperature_c,
                humidity_pct: r.humidity_pct,
                battery_pct: r.battery_pct,
                light_lux: r.light_lux,
                latitude: r.latitude,
                longitude: r.longitude,
            });
        }
        self.insert_rows("device_telemetry", &rows).await
    }

    async fn device_telemetry(
        &self,
        tenant: TenantId,
        device: DeviceId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<TelemetryReading>> {
        // FINAL: a reading delivered twice (MQTT QoS 1) is one row.
        let rows = self
            .client
            .query(
                "SELECT tenant_id, device_id, toUInt32(at) AS at, toUInt16(day) AS day, temperature_c, humidity_pct, \
                 battery_pct, light_lux, latitude, longitude FROM device_telemetry FINAL \
                 WHERE tenant_id = ? AND device_id = ? AND at >= toDateTime(?) AND at < toDateTime(?) \
                 ORDER BY at DESC LIMIT ?",
            )
            .bind(tenant.to_string())
            .bind(device.to_string())
            .bind(secs(from)?)
            .bind(secs(to)?)
            .bind(limit)
            .fetch_all::<TelemetryRow>()
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .rev()
            .map(|r| TelemetryReading {
                device_id: device,
                at: time(r.at),
                temperature_c: r.temperature_c,
                humidity_pct: r.humidity_pct,
                battery_pct: r.battery_pct,
                light_lux: r.light_lux,
                latitude: r.latitude,
                longitude: r.longitude,
            })
            .collect())
    }
}
