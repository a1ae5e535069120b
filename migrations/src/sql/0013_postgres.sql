-- An import stages its new SIMs in a temporary table (`COPY` may not write into a table under
-- row-level security) and moves them with one statement under the caller's scope, so the role the
-- server works as needs TEMPORARY on the database. PostgreSQL grants it to PUBLIC by default;
-- granted here as well so that a database where PUBLIC lost it still imports. A migrating user
-- who may not grant it is warned and leaves the grant to the database's owner.
DO $$
BEGIN
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO ioto_app', current_database());
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'ioto: could not grant TEMPORARY on database % to ioto_app; imports need it',
        current_database();
END $$;
