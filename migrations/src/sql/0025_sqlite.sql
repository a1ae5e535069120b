-- Second factors (see the Postgres migration).
CREATE TABLE user_mfa (
    user_id       BLOB PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    tenant_id     BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id   BLOB,
    totp_secret   TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    confirmed_at  TEXT,
    last_step     INTEGER,
    failures      INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
    locked_until  TEXT
);

CREATE TABLE mfa_recovery_codes (
    user_id      BLOB NOT NULL REFERENCES user_mfa (user_id) ON DELETE CASCADE,
    tenant_id    BLOB NOT NULL,
    customer_id  BLOB,
    code_hash    TEXT NOT NULL CHECK (length(code_hash) = 64),
    used_at      TEXT,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE mfa_challenges (
    token_hash   TEXT PRIMARY KEY CHECK (length(token_hash) = 64),
    tenant_id    BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id  BLOB,
    user_id      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose      TEXT NOT NULL CHECK (purpose IN ('SIGN_IN', 'ENROL')),
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    used_at      TEXT
);
CREATE INDEX mfa_challenges_user ON mfa_challenges (user_id);

ALTER TABLE tenants ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0;
