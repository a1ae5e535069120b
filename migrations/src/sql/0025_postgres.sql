-- Second factors: a user's TOTP secret (sealed by the server's fleet secret key, bound to the
-- user), the step of the last code accepted (a code is good once), the recovery codes (their
-- SHA-256, each good once), wrong codes in a row (every fifth locks the factor for a while,
-- 15 minutes doubling to a day), and the short-lived challenges a sign-in answers between the
-- password and the code (their SHA-256). `tenants.require_mfa`: the tenant asks every user for a
-- second factor; users without one enrol at their next sign-in.
CREATE TABLE user_mfa (
    user_id       uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id   uuid,
    totp_secret   text NOT NULL,
    created_at    timestamptz NOT NULL,
    confirmed_at  timestamptz,
    last_step     bigint,
    failures      integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    locked_until  timestamptz
);

CREATE TABLE mfa_recovery_codes (
    user_id      uuid NOT NULL REFERENCES user_mfa (user_id) ON DELETE CASCADE,
    tenant_id    uuid NOT NULL,
    customer_id  uuid,
    code_hash    text NOT NULL CHECK (length(code_hash) = 64),
    used_at      timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE mfa_challenges (
    token_hash   text PRIMARY KEY CHECK (length(token_hash) = 64),
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id  uuid,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose      text NOT NULL CHECK (purpose IN ('SIGN_IN', 'ENROL')),
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    used_at      timestamptz
);
CREATE INDEX mfa_challenges_user ON mfa_challenges (user_id);

ALTER TABLE tenants ADD COLUMN require_mfa boolean NOT NULL DEFAULT false;

GRANT SELECT, INSERT, UPDATE, DELETE ON user_mfa, mfa_recovery_codes, mfa_challenges TO ioto_app;

ALTER TABLE user_mfa ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_mfa FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON user_mfa
    USING (ioto_visible(tenant_id, customer_id)) WITH CHECK (ioto_visible(tenant_id, customer_id));
ALTER TABLE mfa_recovery_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE mfa_recovery_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON mfa_recovery_codes
    USING (ioto_visible(tenant_id, customer_id)) WITH CHECK (ioto_visible(tenant_id, customer_id));
ALTER TABLE mfa_challenges ENABLE ROW LEVEL SECURITY;
ALTER TABLE mfa_challenges FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON mfa_challenges
    USING (ioto_visible(tenant_id, customer_id)) WITH CHECK (ioto_visible(tenant_id, customer_id));

-- A challenge names no tenant until it is found: the one way the server role finds a
-- challenge's tenant by its hash (as `ioto_refresh_lookup` does for refresh tokens).
CREATE FUNCTION ioto_challenge_lookup(p_hash text)
RETURNS TABLE (tenant_id uuid, customer_id uuid)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public AS $$
DECLARE
    previous text := coalesce(current_setting('app.platform', true), '');
BEGIN
    PERFORM set_config('app.platform', 'on', true);
    RETURN QUERY SELECT c.tenant_id, c.customer_id FROM mfa_challenges c WHERE c.token_hash = p_hash;
    PERFORM set_config('app.platform', previous, true);
END
$$;
REVOKE ALL ON FUNCTION ioto_challenge_lookup(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ioto_challenge_lookup(text) TO ioto_app;
