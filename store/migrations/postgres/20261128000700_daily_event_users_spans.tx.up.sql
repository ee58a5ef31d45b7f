-- Top events counts an event type's distinct users over a range from
-- daily_event_users alone, without a union or DISTINCT over ids: each row
-- keeps the first and last time (µs since the epoch) the user did the type
-- that UTC day, and the last time of the user's previous day with the type.
-- A user is counted once, on the first row in the range, which is the row
-- that falls in the range while its prev_last_at does not.
-- The key puts the user before the day so the projection finds a user's
-- days (the neighbours) for a type; the range index serves the count.
DROP TABLE daily_event_users;

--bun:split

CREATE TABLE daily_event_users (
    project_id   uuid   NOT NULL,
    event_type   text   NOT NULL,
    distinct_id  text   NOT NULL,
    day          date   NOT NULL,
    first_at     bigint NOT NULL,
    last_at      bigint NOT NULL,
    prev_last_at bigint,
    PRIMARY KEY (project_id, event_type, distinct_id, day)
);

--bun:split

CREATE INDEX daily_event_users_range_idx ON daily_event_users (project_id, event_type, day)
    INCLUDE (last_at, first_at, prev_last_at);

--bun:split

INSERT INTO daily_event_users (project_id, event_type, distinct_id, day, first_at, last_at, prev_last_at)
SELECT project_id, type, distinct_id, day, first_at, last_at,
       LAG(last_at) OVER (PARTITION BY project_id, type, distinct_id ORDER BY day)
FROM (SELECT project_id, type, COALESCE(user_id, anonymous_id) AS distinct_id, (occurred_at AT TIME ZONE 'UTC')::date AS day,
             MIN(EXTRACT(EPOCH FROM occurred_at) * 1000000)::bigint AS first_at,
             MAX(EXTRACT(EPOCH FROM occurred_at) * 1000000)::bigint AS last_at
      FROM events WHERE NOT rejected AND COALESCE(user_id, anonymous_id) IS NOT NULL
      GROUP BY 1, 2, 3, 4) AS d;

--bun:split

-- Row-level security as on the other project tables (see 000400).
GRANT SELECT ON daily_event_users TO boost_reader;

--bun:split

ALTER TABLE daily_event_users ENABLE ROW LEVEL SECURITY;

--bun:split

ALTER TABLE daily_event_users FORCE ROW LEVEL SECURITY;

--bun:split

CREATE POLICY tenant_isolation ON daily_event_users FOR SELECT TO boost_reader
    USING (project_id = nullif(current_setting('boost.project_id', true), '')::uuid);

--bun:split

DO $$
BEGIN
    EXECUTE format('CREATE POLICY owner_access ON daily_event_users TO %I USING (true) WITH CHECK (true)', current_user);
END
$$;
