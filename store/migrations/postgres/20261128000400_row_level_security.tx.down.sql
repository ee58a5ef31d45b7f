DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['events', 'end_users', 'end_user_aliases', 'event_counts_hourly', 'daily_users',
                             'revenue_hourly', 'api_keys', 'projects'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %I', t);
        EXECUTE format('DROP POLICY IF EXISTS owner_access ON %I', t);
        EXECUTE format('ALTER TABLE %I NO FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I DISABLE ROW LEVEL SECURITY', t);
        EXECUTE format('REVOKE SELECT ON %I FROM boost_reader', t);
    END LOOP;
END
$$;
