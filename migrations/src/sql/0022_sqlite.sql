-- Quota and plan advice, and the projected cost of forecasts (see 0022_postgres.sql).

CREATE TABLE advice (
    id                       BLOB PRIMARY KEY,
    tenant_id                BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    subject_kind             TEXT NOT NULL CHECK (subject_kind IN ('SIM', 'POOL')),
    subject_id               BLOB NOT NULL,
    iccid                    TEXT,
    customer_id              BLOB,
    kind                     TEXT NOT NULL CHECK (kind IN ('PLAN', 'QUOTA')),
    action                   TEXT NOT NULL CHECK (action IN ('SWITCH_PLAN', 'SET', 'RAISE', 'LOWER')),
    current_plan             TEXT,
    recommended_plan         TEXT,
    current_limit_bytes      INTEGER,
    recommended_limit_bytes  INTEGER,
    current_cost             TEXT,
    recommended_cost         TEXT,
    saving                   TEXT,
    saving_rank              INTEGER NOT NULL DEFAULT 0,
    currency                 TEXT,
    sentence                 TEXT NOT NULL,
    plain_sentence           TEXT NOT NULL,
    window_from              TEXT NOT NULL,
    window_to                TEXT NOT NULL,
    computed_at              TEXT NOT NULL,
    UNIQUE (tenant_id, subject_kind, subject_id, kind)
);
CREATE INDEX advice_by_saving ON advice (tenant_id, saving_rank DESC, id);
CREATE INDEX advice_computed ON advice (tenant_id, computed_at);

ALTER TABLE usage_forecasts ADD COLUMN cost_currency TEXT;
ALTER TABLE usage_forecasts ADD COLUMN cost_so_far TEXT;
ALTER TABLE usage_forecasts ADD COLUMN projected_cost TEXT;
ALTER TABLE usage_forecasts ADD COLUMN projected_cost_high80 TEXT;
