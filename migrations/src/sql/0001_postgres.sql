CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL UNIQUE,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE customers (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          text NOT NULL,
    external_ref  text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT customers_tenant_name UNIQUE (tenant_id, name),
    CONSTRAINT customers_tenant_external_ref UNIQUE (tenant_id, external_ref),
    CONSTRAINT customers_tenant_id UNIQUE (tenant_id, id)
);

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id    uuid,
    email          text NOT NULL,
    display_name   text NOT NULL,
    role           text NOT NULL
        CHECK (role IN ('PLATFORM_ADMIN', 'TENANT_ADMIN', 'OPERATOR', 'CUSTOMER_USER', 'VIEWER')),
    password_hash  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_customer_in_tenant FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id),
    CONSTRAINT users_customer_iff_customer_user CHECK ((role = 'CUSTOMER_USER') = (customer_id IS NOT NULL))
);
CREATE UNIQUE INDEX users_email ON users (lower(email));
CREATE INDEX users_tenant ON users (tenant_id);

CREATE TABLE sims (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id  uuid,
    iccid        text NOT NULL UNIQUE,
    imsi         text NOT NULL UNIQUE,
    msisdn       text UNIQUE,
    state        text NOT NULL CHECK (state IN ('INVENTORY', 'ACTIVE', 'SUSPENDED', 'TERMINATED')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sims_customer_in_tenant FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);
CREATE INDEX sims_tenant_iccid ON sims (tenant_id, iccid);

-- The role the server works as. It owns nothing, so FORCE ROW LEVEL SECURITY is not even needed
-- for it; FORCE also holds the owner to the policies, so a migration or script running as owner
-- without `app.platform` sees no tenant's rows either.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ioto_app') THEN
        CREATE ROLE ioto_app NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO ioto_app;
GRANT SELECT, INSERT, UPDATE ON tenants TO ioto_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON customers, users, sims TO ioto_app;

-- Visibility of a row owned by (tenant, customer) under the transaction-local settings.
CREATE FUNCTION ioto_visible(row_tenant uuid, row_customer uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('app.platform', true), '') = 'on'
        OR (row_tenant::text = coalesce(current_setting('app.tenant_id', true), '')
            AND (coalesce(current_setting('app.customer_id', true), '') = ''
                 OR row_customer::text = current_setting('app.customer_id', true)))
$$;

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (coalesce(current_setting('app.platform', true), '') = 'on'
           OR id::text = coalesce(current_setting('app.tenant_id', true), ''))
    WITH CHECK (coalesce(current_setting('app.platform', true), '') = 'on'
           OR id::text = coalesce(current_setting('app.tenant_id', true), ''));

ALTER TABLE customers ENABLE ROW LEVEL SECURITY;
ALTER TABLE customers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON customers
    USING (ioto_visible(tenant_id, id)) WITH CHECK (ioto_visible(tenant_id, id));

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON users
    USING (ioto_visible(tenant_id, customer_id)) WITH CHECK (ioto_visible(tenant_id, customer_id));

ALTER TABLE sims ENABLE ROW LEVEL SECURITY;
ALTER TABLE sims FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sims
    USING (ioto_visible(tenant_id, customer_id)) WITH CHECK (ioto_visible(tenant_id, customer_id));

-- Login looks a user up by e-mail before any tenant is known. This narrow definer function is the
-- only way the server role can do that; it lifts the policies for its own query and puts the
-- caller's setting back before it returns.
CREATE FUNCTION ioto_login_lookup(p_email text)
RETURNS TABLE (id uuid, tenant_id uuid, customer_id uuid, role text, password_hash text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public AS $$
DECLARE
    previous text := coalesce(current_setting('app.platform', true), '');
BEGIN
    PERFORM set_config('app.platform', 'on', true);
    RETURN QUERY SELECT u.id, u.tenant_id, u.customer_id, u.role, u.password_hash
                 FROM users u WHERE lower(u.email) = lower(p_email);
    PERFORM set_config('app.platform', previous, true);
END
$$;
REVOKE ALL ON FUNCTION ioto_login_lookup(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ioto_login_lookup(text) TO ioto_app;
