-- Bulk job rows: the foreign key to `bulk_jobs` is checked once per statement instead of once per
-- row. A foreign key runs its check as a trigger per inserted row (~3 µs each: ~300 ms of storing
-- a 100,000-row file at validation, measured in docs/benchmarks.md); a statement-level trigger
-- checks the distinct jobs of the statement's rows (one, for a job's rows) and locks them as
-- the foreign key did (FOR KEY SHARE), so a job cannot disappear under rows being written.
-- Deleting a job deletes its rows (the old ON DELETE CASCADE), and a row never moves to another
-- job. Under row-level security the check sees the caller's tenant's jobs only, so a row naming
-- another tenant's job is refused like one naming no job.
ALTER TABLE bulk_job_rows DROP CONSTRAINT bulk_job_rows_job_id_fkey;

CREATE FUNCTION ioto_bulk_rows_have_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing uuid;
BEGIN
    PERFORM 1 FROM bulk_jobs j WHERE j.id IN (SELECT DISTINCT job_id FROM new_rows) FOR KEY SHARE OF j;
    SELECT n.job_id INTO missing
    FROM (SELECT DISTINCT job_id FROM new_rows) n
    LEFT JOIN bulk_jobs j ON j.id = n.job_id
    WHERE j.id IS NULL
    LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'insert on table "bulk_job_rows" violates its job reference: job % does not exist', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER bulk_job_rows_have_jobs AFTER INSERT ON bulk_job_rows
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ioto_bulk_rows_have_jobs();

CREATE FUNCTION ioto_bulk_rows_stay() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'update on table "bulk_job_rows": a row cannot move to another job'
        USING ERRCODE = 'foreign_key_violation';
END
$$;
CREATE TRIGGER bulk_job_rows_stay BEFORE UPDATE OF job_id ON bulk_job_rows
    FOR EACH ROW WHEN (OLD.job_id IS DISTINCT FROM NEW.job_id) EXECUTE FUNCTION ioto_bulk_rows_stay();

CREATE FUNCTION ioto_bulk_job_rows_go() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM bulk_job_rows r USING old_jobs o WHERE r.job_id = o.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER bulk_jobs_delete_rows AFTER DELETE ON bulk_jobs
    REFERENCING OLD TABLE AS old_jobs FOR EACH STATEMENT EXECUTE FUNCTION ioto_bulk_job_rows_go();
