-- API keys: a tenant's credentials for services and scripts. Only the SHA-256 of a key is kept
-- (`token_hash`); `hint` is the part shown in lists (`ioto_AbCd…wXyZ`). A key carries a role and,
-- for CUSTOMER_USER, its sub-customer (deleting the sub-customer deletes its keys). A rolled key
-- names its replacement (`replaced_by`) and works until its `expires_at`; its replacement names
-- it (`rolled_from`). `created_by` keeps the id of a user since deleted (no foreign key).
CREATE TABLE api_keys (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id        uuid,
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role               text NOT NULL
        CHECK (role IN ('PLATFORM_ADMIN', 'TENANT_ADMIN', 'OPERATOR', 'CUSTOMER_USER', 'VIEWER')),
    token_hash         text NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    hint               text NOT NULL,
    created_by         uuid,
    created_at         timestamptz NOT NULL,
    expires_at         timestamptz,
    last_used_at       timestamptz,
    last_used_address  text,
    revoked_at         timestamptz,
    rolled_from        uuid,
    replaced_by        uuid,
    CONSTRAINT api_keys_customer_in_tenant FOREIGN KEY (tenant_id, customer_id)
        REFERENCES customers (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT api_keys_customer_iff_customer_user CHECK ((role = 'CUSTOMER_USER') = (customer_id IS NOT NULL))
);
CREATE INDEX api_keys_tenant_name ON api_keys (tenant_id, name, id);

GRANT SELECT, INSERT, UPDATE ON api_keys TO ioto_app;

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
-- Keys are the tenant's staff's: a session narrowed to a sub-customer reads none.
CREATE POLICY tenant_isolation ON api_keys
    USING (ioto_tenant_visible(tenant_id) AND coalesce(current_setting('app.customer_id', true), '') = '')
    WITH CHECK (ioto_tenant_visible(tenant_id) AND coalesce(current_setting('app.customer_id', true), '') = '');

-- A request with a key names no tenant until the key is found: this narrow definer function is
-- the only way the server role looks a key up by its hash (as `ioto_login_lookup` does for
-- e-mails); it puts the caller's setting back before it returns.
CREATE FUNCTION ioto_api_key_lookup(p_hash text)
RETURNS SETOF api_keys
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public AS $$
DECLARE
    previous text := coalesce(current_setting('app.platform', true), '');
BEGIN
    PERFORM set_config('app.platform', 'on', true);
    RETURN QUERY SELECT * FROM api_keys k WHERE k.token_hash = p_hash;
    PERFORM set_config('app.platform', previous, true);
END
$$;
REVOKE ALL ON FUNCTION ioto_api_key_lookup(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ioto_api_key_lookup(text) TO ioto_app;

-- The audit trail records more than SIMs and devices.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_entity_kind_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_entity_kind_check
    CHECK (entity_kind IN ('SIM', 'DEVICE', 'API_KEY'));
