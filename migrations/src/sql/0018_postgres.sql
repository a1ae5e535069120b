-- The telemetry trigger (alert metrics TELEMETRY_ABOVE and TELEMETRY_BELOW): the sensor a rule
-- reads and its limits, in hundredths of the sensor's unit (3550 is 35.5 °C; temperatures go
-- below zero). A telemetry alert keeps its reading in alerts.value, in hundredths too (that
-- column is signed already).
ALTER TABLE alert_rules ADD COLUMN telemetry_field text
    CHECK (telemetry_field IN ('TEMPERATURE', 'HUMIDITY', 'BATTERY', 'LIGHT'));
ALTER TABLE alert_rules ADD COLUMN telemetry_value bigint;
ALTER TABLE alert_rules ADD COLUMN telemetry_clear_value bigint;
-- A field comes with its value; a clear value only with both.
ALTER TABLE alert_rules ADD CONSTRAINT alert_rules_telemetry_limit
    CHECK ((telemetry_field IS NULL) = (telemetry_value IS NULL)
        AND (telemetry_clear_value IS NULL OR telemetry_value IS NOT NULL));
