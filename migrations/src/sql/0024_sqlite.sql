-- Sign-in sessions and their refresh tokens (see the Postgres migration).
CREATE TABLE user_sessions (
    id              BLOB PRIMARY KEY,
    tenant_id       BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id         BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    customer_id     BLOB,
    created_at      TEXT NOT NULL,
    refreshed_at    TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    client_address  TEXT,
    user_agent      TEXT CHECK (length(user_agent) <= 300),
    ended_at        TEXT,
    end_reason      TEXT CHECK (end_reason IN ('LOGOUT', 'ENDED_BY_USER', 'REFRESH_REUSED', 'PASSWORD_CHANGED', 'FACTOR_RESET', 'REPLACED')),
    CONSTRAINT user_sessions_ended_with_reason CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);
CREATE INDEX user_sessions_user ON user_sessions (user_id, created_at DESC);

CREATE TABLE refresh_tokens (
    token_hash   TEXT PRIMARY KEY CHECK (length(token_hash) = 64),
    session_id   BLOB NOT NULL REFERENCES user_sessions (id) ON DELETE CASCADE,
    tenant_id    BLOB NOT NULL,
    customer_id  BLOB,
    issued_at    TEXT NOT NULL,
    used_at      TEXT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
