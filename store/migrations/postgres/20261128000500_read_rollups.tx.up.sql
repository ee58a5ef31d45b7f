-- Roll-ups that keep distinct-user analytics exact without counting
-- distinct ids over months of rows at query time: per UTC day and event
-- type (top events), per UTC week and month (WAU, MAU, weekly retention),
-- their row counts (active_user_counts), and event counts per UTC day.
-- The events projection maintains them; a replay rebuilds them.
CREATE TABLE event_counts_daily (
    project_id uuid   NOT NULL,
    event_type text   NOT NULL,
    day        date   NOT NULL,
    count      bigint NOT NULL,
    PRIMARY KEY (project_id, event_type, day)
);

--bun:split

CREATE INDEX event_counts_daily_time_idx ON event_counts_daily (project_id, day);

--bun:split

CREATE TABLE daily_event_users (
    project_id  uuid NOT NULL,
    day         date NOT NULL,
    event_type  text NOT NULL,
    distinct_id text NOT NULL,
    PRIMARY KEY (project_id, event_type, day, distinct_id)
);

--bun:split

CREATE TABLE weekly_users (
    project_id  uuid NOT NULL,
    distinct_id text NOT NULL,
    week        date NOT NULL,
    PRIMARY KEY (project_id, distinct_id, week)
);

--bun:split

CREATE TABLE monthly_users (
    project_id  uuid NOT NULL,
    distinct_id text NOT NULL,
    month       date NOT NULL,
    PRIMARY KEY (project_id, distinct_id, month)
);

--bun:split

CREATE TABLE active_user_counts (
    project_id   uuid   NOT NULL,
    period       text   NOT NULL,
    period_start date   NOT NULL,
    users        bigint NOT NULL,
    PRIMARY KEY (project_id, period, period_start)
);

--bun:split

CREATE INDEX end_users_project_first_seen_idx ON end_users (project_id, first_seen_at);

--bun:split

-- Backfill from what is already projected.
INSERT INTO event_counts_daily (project_id, event_type, day, count)
SELECT project_id, event_type, (bucket_start AT TIME ZONE 'UTC')::date, SUM(count)
FROM event_counts_hourly GROUP BY 1, 2, 3;

--bun:split

INSERT INTO daily_event_users (project_id, day, event_type, distinct_id)
SELECT DISTINCT project_id, (occurred_at AT TIME ZONE 'UTC')::date, type, COALESCE(user_id, anonymous_id)
FROM events WHERE NOT rejected AND COALESCE(user_id, anonymous_id) IS NOT NULL;

--bun:split

INSERT INTO weekly_users (project_id, distinct_id, week)
SELECT DISTINCT project_id, distinct_id, day - (EXTRACT(ISODOW FROM day)::int - 1) FROM daily_users;

--bun:split

INSERT INTO monthly_users (project_id, distinct_id, month)
SELECT DISTINCT project_id, distinct_id, day - (EXTRACT(DAY FROM day)::int - 1) FROM daily_users;

--bun:split

INSERT INTO active_user_counts (project_id, period, period_start, users)
SELECT project_id, 'day', day, COUNT(*) FROM daily_users GROUP BY 1, 3
UNION ALL SELECT project_id, 'week', week, COUNT(*) FROM weekly_users GROUP BY 1, 3
UNION ALL SELECT project_id, 'month', month, COUNT(*) FROM monthly_users GROUP BY 1, 3;

--bun:split

-- Row-level security as on the other project tables (see 000400).
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['event_counts_daily', 'daily_event_users', 'weekly_users', 'monthly_users',
                             'active_user_counts'] LOOP
        EXECUTE format('GRANT SELECT ON %I TO boost_reader', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I FOR SELECT TO boost_reader USING '
                       '(project_id = nullif(current_setting(''boost.project_id'', true), '''')::uuid)', t);
        EXECUTE format('CREATE POLICY owner_access ON %I TO %I USING (true) WITH CHECK (true)', t, current_user);
    END LOOP;
END
$$;
