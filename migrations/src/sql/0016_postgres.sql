-- The IMEI of the device a SIM was last seen in (session rollups of contract version 2 carry
-- it): a change of device shows as a change of IMEI.
ALTER TABLE sims ADD COLUMN last_imei text CHECK (last_imei ~ '^[0-9]{15}$');
