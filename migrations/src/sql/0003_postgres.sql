-- When a user's password last changed: tokens issued before then are refused.
ALTER TABLE users ADD COLUMN credentials_changed_at TIMESTAMPTZ;
