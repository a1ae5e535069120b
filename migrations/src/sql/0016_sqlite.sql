-- The IMEI of the device a SIM was last seen in (see 0016_postgres.sql).
ALTER TABLE sims ADD COLUMN last_imei TEXT CHECK (last_imei IS NULL OR length(last_imei) = 15);
