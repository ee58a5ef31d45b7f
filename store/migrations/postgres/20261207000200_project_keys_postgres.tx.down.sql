CREATE FUNCTION boost_migration_project_uuid(k integer) RETURNS uuid LANGUAGE sql STABLE AS
    $$ SELECT project_id FROM project_keys WHERE key = k $$;

--bun:split

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['events', 'end_users', 'end_user_aliases', 'event_counts_hourly', 'daily_users',
                             'revenue_hourly', 'event_counts_daily', 'daily_event_users', 'weekly_users',
                             'monthly_users', 'active_user_counts'] LOOP
        EXECUTE format('DROP POLICY tenant_isolation ON %I', t);
        EXECUTE format('ALTER TABLE %I ALTER COLUMN project_id TYPE uuid USING boost_migration_project_uuid(project_id)', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I FOR SELECT TO boost_reader USING '
                       '(project_id = nullif(current_setting(''boost.project_id'', true), '''')::uuid)', t);
    END LOOP;
END
$$;

--bun:split

DROP FUNCTION boost_migration_project_uuid(integer);

--bun:split

DROP TABLE project_keys;
