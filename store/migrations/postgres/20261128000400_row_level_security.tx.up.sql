-- Tenant isolation in the database. Reads for one project run as the
-- non-owner role boost_reader inside a transaction that sets
-- boost.project_id (SET LOCAL ROLE boost_reader;
-- SELECT set_config('boost.project_id', '<uuid>', true)); the policies below
-- then hide every other project's rows, whatever the query says. The owner
-- (migrations, projections) keeps full access through its own policy, since
-- FORCE makes policies apply to the owner too.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'boost_reader') THEN
        CREATE ROLE boost_reader NOLOGIN;
    END IF;
END
$$;

--bun:split

DO $$
DECLARE
    t text;
BEGIN
    EXECUTE format('GRANT boost_reader TO %I', current_user);
    EXECUTE 'GRANT USAGE ON SCHEMA ' || quote_ident(current_schema()) || ' TO boost_reader';
    FOREACH t IN ARRAY ARRAY['events', 'end_users', 'end_user_aliases', 'event_counts_hourly', 'daily_users',
                             'revenue_hourly', 'api_keys'] LOOP
        EXECUTE format('GRANT SELECT ON %I TO boost_reader', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I FOR SELECT TO boost_reader USING '
                       '(project_id = nullif(current_setting(''boost.project_id'', true), '''')::uuid)', t);
        EXECUTE format('CREATE POLICY owner_access ON %I TO %I USING (true) WITH CHECK (true)', t, current_user);
    END LOOP;
    EXECUTE 'GRANT SELECT ON projects TO boost_reader';
    ALTER TABLE projects ENABLE ROW LEVEL SECURITY;
    ALTER TABLE projects FORCE ROW LEVEL SECURITY;
    CREATE POLICY tenant_isolation ON projects FOR SELECT TO boost_reader USING
        (id = nullif(current_setting('boost.project_id', true), '')::uuid);
    EXECUTE format('CREATE POLICY owner_access ON projects TO %I USING (true) WITH CHECK (true)', current_user);
END
$$;
