-- SIMs: their tenant and sub-customer references are checked once per statement instead of once
-- per row, as migration 0010 did for bulk job rows. Each foreign key ran its check as a
-- trigger per inserted row, a planned lookup of the referenced row each time. Measured with an
-- import's own statement as the server's role (backend CPU for 100,000 SIMs with their audit
-- rows, 500,000 of each already stored, median of three; docs/benchmarks.md): 2.62 s became
-- 2.27 s without a sub-customer, and 2.75 s became 2.09 s with one.
--
-- The statement-level trigger checks the statement's distinct tenants and (tenant, sub-customer)
-- pairs (one each, for an import) and locks them as the foreign keys did (FOR KEY SHARE), so
-- neither can disappear under SIMs being written. Under row-level security the check sees the
-- caller's tenant (and sub-customer) only, so a SIM naming another tenant's rows is refused like
-- one naming none. What the foreign keys did besides stays:
-- - assigning SIMs to a sub-customer checks the sub-customers the changed rows name, once per
--   statement too;
-- - a SIM never moves to another tenant (none ever did);
-- - deleting a tenant deletes its SIMs (ON DELETE CASCADE);
-- - a sub-customer that still has SIMs cannot be deleted, nor can a key SIMs name change
--   (NO ACTION).
-- The device reference stays a foreign key: an import has no devices, so it skips that check.
-- The checks on the referenced side (a sub-customer's deletion, a key's change) read the
-- statement's snapshot: under READ COMMITTED, the server's level, a SIM committed while the
-- deletion waited for its lock is seen and refuses it, as the foreign key did. A session at
-- REPEATABLE READ or above deleting sub-customers would not see it (the foreign key raised a
-- serialization failure there); the server never does that.
ALTER TABLE sims DROP CONSTRAINT sims_tenant_id_fkey, DROP CONSTRAINT sims_customer_in_tenant;

-- Locks sub-customer `p_customer` of `p_tenant` against deletion until commit, as the foreign key
-- did; refuses the SIM statement `op` ('insert', 'update') when there is no such sub-customer.
CREATE FUNCTION ioto_lock_sim_customer(op text, p_tenant uuid, p_customer uuid) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM customers c WHERE c.tenant_id = p_tenant AND c.id = p_customer FOR KEY SHARE OF c;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% on table "sims" violates its references: sub-customer % of tenant % does not exist',
            op, p_customer, p_tenant
            USING ERRCODE = 'foreign_key_violation';
    END IF;
END
$$;

CREATE FUNCTION ioto_sims_have_owners() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    o record;
BEGIN
    -- One pass over the statement's rows; then a lookup per distinct owner.
    FOR o IN SELECT DISTINCT tenant_id, customer_id FROM new_rows LOOP
        PERFORM 1 FROM tenants t WHERE t.id = o.tenant_id FOR KEY SHARE OF t;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'insert on table "sims" violates its references: tenant % does not exist', o.tenant_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        IF o.customer_id IS NOT NULL THEN
            PERFORM ioto_lock_sim_customer('insert', o.tenant_id, o.customer_id);
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
CREATE TRIGGER sims_check_owners AFTER INSERT ON sims
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ioto_sims_have_owners();

-- Assigning SIMs to a sub-customer: the sub-customers the statement's changed rows name, checked
-- and locked once each, as inserts are (100,000 SIMs assigned: 1.90 s of backend CPU against
-- 2.00 s with the foreign key and 2.25 s with a per-row trigger).
CREATE FUNCTION ioto_sims_keep_owners() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    o record;
BEGIN
    FOR o IN SELECT DISTINCT n.tenant_id, n.customer_id FROM new_rows n JOIN old_rows p ON p.id = n.id
             WHERE n.customer_id IS NOT NULL AND n.customer_id IS DISTINCT FROM p.customer_id LOOP
        PERFORM ioto_lock_sim_customer('update', o.tenant_id, o.customer_id);
    END LOOP;
    RETURN NULL;
END
$$;
CREATE TRIGGER sims_check_owners_update AFTER UPDATE ON sims
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ioto_sims_keep_owners();

CREATE FUNCTION ioto_sims_stay() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'update on table "sims": a SIM cannot move to another tenant'
        USING ERRCODE = 'foreign_key_violation';
END
$$;
CREATE TRIGGER sims_stay BEFORE UPDATE OF tenant_id ON sims
    FOR EACH ROW WHEN (OLD.tenant_id IS DISTINCT FROM NEW.tenant_id) EXECUTE FUNCTION ioto_sims_stay();

-- Before a tenant goes, its SIMs go: before the tenant's foreign keys delete its devices and
-- sub-customers, which SIMs may still name. All of them, as the foreign key's cascade did
-- whatever the deleting session may see: a definer function that lifts the policies for its own
-- statement and puts the caller's setting back (as `ioto_login_lookup` does).
CREATE FUNCTION ioto_tenant_sims_go() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    previous text := coalesce(current_setting('app.platform', true), '');
BEGIN
    PERFORM set_config('app.platform', 'on', true);
    DELETE FROM sims WHERE tenant_id = OLD.id;
    PERFORM set_config('app.platform', previous, true);
    RETURN OLD;
END
$$;
REVOKE ALL ON FUNCTION ioto_tenant_sims_go() FROM PUBLIC;
CREATE TRIGGER tenants_delete_sims BEFORE DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION ioto_tenant_sims_go();

-- A key that SIMs still name stays: a tenant's id, a sub-customer's (tenant, id), and a
-- sub-customer itself.
CREATE FUNCTION ioto_tenant_key_stays() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM sims s WHERE s.tenant_id = OLD.id) THEN
        RAISE EXCEPTION 'update on table "tenants": % is still named by SIMs', OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER tenants_key_stays BEFORE UPDATE OF id ON tenants
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION ioto_tenant_key_stays();

CREATE FUNCTION ioto_customer_key_stays() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM sims s WHERE s.tenant_id = OLD.tenant_id AND s.customer_id = OLD.id) THEN
        RAISE EXCEPTION 'update on table "customers": % is still named by SIMs', OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER customers_key_stays BEFORE UPDATE OF id, tenant_id ON customers
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id)
    EXECUTE FUNCTION ioto_customer_key_stays();

CREATE FUNCTION ioto_customers_without_sims() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    held uuid;
BEGIN
    SELECT o.id INTO held FROM old_customers o
    WHERE EXISTS (SELECT 1 FROM sims s WHERE s.tenant_id = o.tenant_id AND s.customer_id = o.id)
    LIMIT 1;
    IF held IS NOT NULL THEN
        RAISE EXCEPTION 'delete on table "customers": sub-customer % is still named by SIMs', held
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER customers_delete_held AFTER DELETE ON customers
    REFERENCING OLD TABLE AS old_customers FOR EACH STATEMENT EXECUTE FUNCTION ioto_customers_without_sims();
