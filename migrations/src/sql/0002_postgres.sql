-- Fleet: devices, SIM details and bindings, labels, audit trail, scheduled transitions,
-- label catalogue, per-tenant visibility setting.

ALTER TABLE tenants ADD COLUMN customers_see_sims boolean NOT NULL DEFAULT true;

CREATE TABLE devices (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id       uuid,
    imei              text NOT NULL,
    name              text NOT NULL,
    kind              text NOT NULL,
    connectivity      text NOT NULL,
    state             text NOT NULL CHECK (state IN ('REGISTERED', 'IN_SERVICE', 'MAINTENANCE', 'RETIRED')),
    labels            jsonb NOT NULL DEFAULT '{}',
    last_activity_at  timestamptz,
    version           bigint NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT devices_customer_in_tenant FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id),
    CONSTRAINT devices_tenant_imei UNIQUE (tenant_id, imei),
    CONSTRAINT devices_tenant_id UNIQUE (tenant_id, id)
);
CREATE INDEX devices_tenant_name ON devices (tenant_id, name, id);
CREATE INDEX devices_tenant_state ON devices (tenant_id, state, id);
CREATE INDEX devices_tenant_created ON devices (tenant_id, created_at, id);
CREATE INDEX devices_tenant_updated ON devices (tenant_id, updated_at, id);
CREATE INDEX devices_tenant_customer ON devices (tenant_id, customer_id);
CREATE INDEX devices_labels ON devices USING gin (labels jsonb_path_ops);

ALTER TABLE sims DROP CONSTRAINT sims_state_check;
ALTER TABLE sims
    ADD CONSTRAINT sims_state_check
        CHECK (state IN ('INVENTORY', 'ACTIVE', 'SUSPENDED', 'LOST_STOLEN', 'TERMINATED')),
    ADD COLUMN sim_type text NOT NULL DEFAULT 'POSTPAID'
        CHECK (sim_type IN ('PREPAID', 'POSTPAID', 'DATA_ONLY')),
    ADD COLUMN tariff_plan text,
    ADD COLUMN labels jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN device_id uuid,
    ADD COLUMN pin_sealed text,
    ADD COLUMN puk_sealed text,
    ADD COLUMN activation_code text,
    ADD COLUMN last_network text,
    ADD COLUMN last_activity_at timestamptz,
    ADD COLUMN import_id uuid,
    ADD COLUMN version bigint NOT NULL DEFAULT 1,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT sims_device_in_tenant FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, id);
CREATE INDEX sims_device ON sims (device_id) WHERE device_id IS NOT NULL;
-- Every index costs each bulk import: lists walk (tenant, iccid) or (tenant, customer, iccid) in
-- order and filter the rest (state, activity, type), which stays fast while matches are common.
CREATE INDEX sims_tenant_created ON sims (tenant_id, created_at, id);
CREATE INDEX sims_tenant_customer ON sims (tenant_id, customer_id, iccid);
CREATE INDEX sims_labels ON sims USING gin (labels jsonb_path_ops);

CREATE TABLE audit_events (
    id             bigserial PRIMARY KEY,
    -- No foreign key: the trail is append-only history, written in bulk with every import.
    tenant_id      uuid NOT NULL,
    customer_id    uuid,
    entity_kind    text NOT NULL CHECK (entity_kind IN ('SIM', 'DEVICE')),
    entity_id      uuid NOT NULL,
    entity_ref     text NOT NULL,
    action         text NOT NULL,
    actor          text NOT NULL,
    actor_user_id  uuid,
    at             timestamptz NOT NULL,
    old_value      jsonb,
    new_value      jsonb,
    note           text
);
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, id DESC);
CREATE INDEX audit_events_entity ON audit_events (entity_id, id DESC);

CREATE TABLE scheduled_transitions (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id        uuid,
    sim_id             uuid NOT NULL REFERENCES sims (id) ON DELETE CASCADE,
    iccid              text NOT NULL,
    target_state       text NOT NULL,
    effective_at       timestamptz NOT NULL,
    status             text NOT NULL CHECK (status IN ('PENDING', 'APPLIED', 'FAILED', 'CANCELLED')),
    requested_by       text NOT NULL,
    requested_by_user  uuid,
    note               text,
    created_at         timestamptz NOT NULL,
    finished_at        timestamptz,
    outcome            text,
    claimed_until      timestamptz
);
CREATE INDEX scheduled_transitions_due ON scheduled_transitions (effective_at) WHERE status = 'PENDING';
CREATE INDEX scheduled_transitions_sim ON scheduled_transitions (sim_id, created_at DESC);

CREATE TABLE label_suggestions (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key          text NOT NULL,
    suggested    jsonb NOT NULL DEFAULT '[]',
    description  text,
    PRIMARY KEY (tenant_id, key)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON devices, scheduled_transitions, label_suggestions TO ioto_app;
GRANT SELECT, INSERT ON audit_events TO ioto_app;
GRANT USAGE ON SEQUENCE audit_events_id_seq TO ioto_app;

-- Row visibility, now as a PL/pgSQL function: the planner does not inline it, so it estimates the
-- policy as one opaque condition (a third of the rows) instead of multiplying the selectivities
-- of its parts into "almost nothing", which made it prefer sorting every matching row over
-- walking an index in order for `ORDER BY … LIMIT` pages with filters. Same meaning as before.
CREATE OR REPLACE FUNCTION ioto_visible(row_tenant uuid, row_customer uuid) RETURNS boolean
LANGUAGE plpgsql STABLE COST 1 AS $$
BEGIN
    RETURN coalesce(current_setting('app.platform', true), '') = 'on'
        OR (row_tenant = nullif(current_setting('app.tenant_id', true), '')::uuid
            AND (nullif(current_setting('app.customer_id', true), '') IS NULL
                 OR row_customer = nullif(current_setting('app.customer_id', true), '')::uuid));
END
$$;

-- The same rule for rows being written (WITH CHECK), as plain SQL that the executor inlines: a
-- bulk import checks it once per row, where the PL/pgSQL call costs more.
CREATE FUNCTION ioto_writable(row_tenant uuid, row_customer uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('app.platform', true), '') = 'on'
        OR (row_tenant = nullif(current_setting('app.tenant_id', true), '')::uuid
            AND (nullif(current_setting('app.customer_id', true), '') IS NULL
                 OR row_customer = nullif(current_setting('app.customer_id', true), '')::uuid))
$$;
ALTER POLICY tenant_isolation ON sims WITH CHECK (ioto_writable(tenant_id, customer_id));

-- Rows of a tenant regardless of sub-customer (shared catalogues).
CREATE FUNCTION ioto_tenant_visible(row_tenant uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('app.platform', true), '') = 'on'
        OR row_tenant::text = coalesce(current_setting('app.tenant_id', true), '')
$$;

ALTER TABLE devices ENABLE ROW LEVEL SECURITY;
ALTER TABLE devices FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON devices
    USING (ioto_visible(tenant_id, customer_id)) WITH CHECK (ioto_writable(tenant_id, customer_id));

ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_events
    USING (ioto_visible(tenant_id, customer_id)) WITH CHECK (ioto_tenant_visible(tenant_id));

ALTER TABLE scheduled_transitions ENABLE ROW LEVEL SECURITY;
ALTER TABLE scheduled_transitions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON scheduled_transitions
    USING (ioto_visible(tenant_id, customer_id)) WITH CHECK (ioto_writable(tenant_id, customer_id));

ALTER TABLE label_suggestions ENABLE ROW LEVEL SECURITY;
ALTER TABLE label_suggestions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON label_suggestions
    USING (ioto_tenant_visible(tenant_id))
    WITH CHECK (ioto_tenant_visible(tenant_id) AND coalesce(current_setting('app.customer_id', true), '') = '');

-- ICCID, IMSI and MSISDN are unique across the platform. An import checks its rows against all
-- tenants through this narrow definer function: it answers which values are taken, never by whom.
-- Values come as comma-separated text (digits and '+' only, checked before the call).
CREATE FUNCTION ioto_taken_identifiers(p_iccids text, p_imsis text, p_msisdns text)
RETURNS TABLE (kind text, value text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public AS $$
DECLARE
    previous text := coalesce(current_setting('app.platform', true), '');
BEGIN
    PERFORM set_config('app.platform', 'on', true);
    RETURN QUERY
        SELECT 'iccid'::text, s.iccid FROM sims s
            JOIN unnest(string_to_array(p_iccids, ',')) v(x) ON s.iccid = v.x
        UNION ALL
        SELECT 'imsi'::text, s.imsi FROM sims s
            JOIN unnest(string_to_array(p_imsis, ',')) v(x) ON s.imsi = v.x
        UNION ALL
        SELECT 'msisdn'::text, s.msisdn FROM sims s
            JOIN unnest(string_to_array(p_msisdns, ',')) v(x) ON s.msisdn = v.x;
    PERFORM set_config('app.platform', previous, true);
END
$$;
REVOKE ALL ON FUNCTION ioto_taken_identifiers(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ioto_taken_identifiers(text, text, text) TO ioto_app;
