-- The telemetry trigger: the sensor an alert rule reads and its limits, in hundredths of the
-- sensor's unit (see 0018_postgres.sql). SQLite adds no table constraint to an existing table:
-- the field checks itself; that a field comes with its value is the domain's to keep.
ALTER TABLE alert_rules ADD COLUMN telemetry_field TEXT
    CHECK (telemetry_field IS NULL OR telemetry_field IN ('TEMPERATURE', 'HUMIDITY', 'BATTERY', 'LIGHT'));
ALTER TABLE alert_rules ADD COLUMN telemetry_value INTEGER;
ALTER TABLE alert_rules ADD COLUMN telemetry_clear_value INTEGER;
