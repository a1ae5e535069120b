-- Sign-in sessions and their refresh tokens (RFC 9700: each refresh token is good once; a used
-- one presented again ends its session). Only the SHA-256 of a refresh token is kept. A session
-- carries its user's sub-customer, so that the row policies narrow it as they narrow the user.
CREATE TABLE user_sessions (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    customer_id     uuid,
    created_at      timestamptz NOT NULL,
    refreshed_at    timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    client_address  text,
    user_agent      text CHECK (length(user_agent) <= 300),
    ended_at        timestamptz,
    end_reason      text CHECK (end_reason IN ('LOGOUT', 'ENDED_BY_USER', 'REFRESH_REUSED', 'PASSWORD_CHANGED', 'FACTOR_RESET', 'REPLACED')),
    CONSTRAINT user_sessions_ended_with_reason CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);
CREATE INDEX user_sessions_user ON user_sessions (user_id, created_at DESC);

CREATE TABLE refresh_tokens (
    token_hash   text PRIMARY KEY CHECK (length(token_hash) = 64),
    session_id   uuid NOT NULL REFERENCES user_sessions (id) ON DELETE CASCADE,
    tenant_id    uuid NOT NULL,
    customer_id  uuid,
    issued_at    timestamptz NOT NULL,
    used_at      timestamptz
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON user_sessions, refresh_tokens TO ioto_app;

ALTER TABLE user_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON user_sessions
    USING (ioto_visible(tenant_id, customer_id)) WITH CHECK (ioto_visible(tenant_id, customer_id));
ALTER TABLE refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE refresh_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON refresh_tokens
    USING (ioto_visible(tenant_id, customer_id)) WITH CHECK (ioto_visible(tenant_id, customer_id));

-- A refresh names no tenant until its token is found: this narrow definer function is the only
-- way the server role finds which session (and tenant) a refresh token belongs to; the refresh
-- itself then runs in that tenant's scope. It puts the caller's setting back before it returns.
CREATE FUNCTION ioto_refresh_lookup(p_hash text)
RETURNS TABLE (session_id uuid, tenant_id uuid, customer_id uuid)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public AS $$
DECLARE
    previous text := coalesce(current_setting('app.platform', true), '');
BEGIN
    PERFORM set_config('app.platform', 'on', true);
    RETURN QUERY SELECT r.session_id, r.tenant_id, r.customer_id FROM refresh_tokens r WHERE r.token_hash = p_hash;
    PERFORM set_config('app.platform', previous, true);
END
$$;
REVOKE ALL ON FUNCTION ioto_refresh_lookup(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ioto_refresh_lookup(text) TO ioto_app;
