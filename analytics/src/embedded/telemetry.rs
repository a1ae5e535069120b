//! Device readings: one row per device and time (a repeated reading replaces the row).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ioto_domain::ports::TelemetryStore;
use ioto_domain::usage::TelemetryReading;
use ioto_domain::{DeviceId, Result, TenantId};
use sqlx::Row;

use super::{db_err, EmbeddedUsage};
use crate::stored::time;

#[async_trait]
impl TelemetryStore for EmbeddedUsage {
    async fn write_telemetry(&self, readings: &[(TenantId, TelemetryReading)]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        for (tenant, r) in readings {
            sqlx::query(
                "INSERT INTO device_telemetry (tenant_id, device_id, at, temperature_c, humidity_pct, battery_pct,
                   light_lux, latitude, longitude) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (tenant_id, device_id, at) DO UPDATE SET
                   temperature_c = excluded.temperature_c, humidity_pct = excluded.humidity_pct,
                   battery_pct = excluded.battery_pct, light_lux = excluded.light_lux,
                   latitude = excluded.latitude, longitude = excluded.longitude",
            )
            .bind(tenant.to_string())
            .bind(r.device_id.to_string())
            .bind(r.at.timestamp())
            .bind(r.temperature_c)
            .bind(r.humidity_pct)
            .bind(r.battery_pct)
            .bind(r.light_lux)
            .bind(r.latitude)
            .bind(r.longitude)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn device_telemetry(
        &self,
        tenant: TenantId,
        device: DeviceId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<TelemetryReading>> {
        let rows = sqlx::query(
            "SELECT at, temperature_c, humidity_pct, battery_pct, light_lux, latitude, longitude FROM device_telemetry
             WHERE tenant_id = ? AND device_id = ? AND at >= ? AND at < ? ORDER BY at DESC LIMIT ?",
        )
        .bind(tenant.to_string())
        .bind(device.to_string())
        .bind(from.timestamp())
        .bind(to.timestamp())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(rows
            .iter()
            .rev()
            .map(|r| TelemetryReading {
                device_id: device,
                at: time(r.get("at")),
                temperature_c: r.get("temperature_c"),
                humidity_pct: r.get("humidity_pct"),
                battery_pct: r.get("battery_pct"),
                light_lux: r.get("light_lux"),
                latitude: r.get("latitude"),
                longitude: r.get("longitude"),
            })
            .collect())
    }
}
