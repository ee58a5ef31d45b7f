-- Roll-ups that keep distinct-user analytics exact without counting
-- distinct ids over months of rows at query time: per UTC day and event
-- type (top events), per UTC week and month (WAU, MAU, weekly retention),
-- their row counts (active_user_counts), and event counts per UTC day.
-- The events projection maintains them; a replay rebuilds them. Days,
-- weeks and months are stored like daily_users.day: 'YYYY-MM-DD 00:00:00+00:00'.
-- Clustered by key (WITHOUT ROWID): one B-tree per table, and a range of
-- days is a range of pages.
CREATE TABLE event_counts_daily (
    project_id text   NOT NULL,
    event_type text   NOT NULL,
    day        text   NOT NULL,
    count      bigint NOT NULL,
    PRIMARY KEY (project_id, event_type, day)
) WITHOUT ROWID;

--bun:split

CREATE INDEX event_counts_daily_time_idx ON event_counts_daily (project_id, day);

--bun:split

CREATE TABLE daily_event_users (
    project_id  text NOT NULL,
    day         text NOT NULL,
    event_type  text NOT NULL,
    distinct_id text NOT NULL,
    PRIMARY KEY (project_id, event_type, day, distinct_id)
) WITHOUT ROWID;

--bun:split

CREATE TABLE weekly_users (
    project_id  text NOT NULL,
    distinct_id text NOT NULL,
    week        text NOT NULL,
    PRIMARY KEY (project_id, distinct_id, week)
) WITHOUT ROWID;

--bun:split

CREATE TABLE monthly_users (
    project_id  text NOT NULL,
    distinct_id text NOT NULL,
    month       text NOT NULL,
    PRIMARY KEY (project_id, distinct_id, month)
) WITHOUT ROWID;

--bun:split

CREATE TABLE active_user_counts (
    project_id   text   NOT NULL,
    period       text   NOT NULL,
    period_start text   NOT NULL,
    users        bigint NOT NULL,
    PRIMARY KEY (project_id, period, period_start)
) WITHOUT ROWID;

--bun:split

CREATE INDEX end_users_project_first_seen_idx ON end_users (project_id, first_seen_at);

--bun:split

-- Backfill from what is already projected.
INSERT INTO event_counts_daily (project_id, event_type, day, count)
SELECT project_id, event_type, substr(bucket_start, 1, 10) || ' 00:00:00+00:00', SUM(count)
FROM event_counts_hourly GROUP BY 1, 2, 3;

--bun:split

INSERT INTO daily_event_users (project_id, day, event_type, distinct_id)
SELECT DISTINCT project_id, substr(occurred_at, 1, 10) || ' 00:00:00+00:00', type, COALESCE(user_id, anonymous_id)
FROM events WHERE NOT rejected AND COALESCE(user_id, anonymous_id) IS NOT NULL;

--bun:split

INSERT INTO weekly_users (project_id, distinct_id, week)
SELECT DISTINCT project_id, distinct_id, date(substr(day, 1, 10), '-6 days', 'weekday 1') || ' 00:00:00+00:00' FROM daily_users;

--bun:split

INSERT INTO monthly_users (project_id, distinct_id, month)
SELECT DISTINCT project_id, distinct_id, date(substr(day, 1, 10), 'start of month') || ' 00:00:00+00:00' FROM daily_users;

--bun:split

INSERT INTO active_user_counts (project_id, period, period_start, users)
SELECT project_id, 'day', day, COUNT(*) FROM daily_users GROUP BY 1, 3
UNION ALL SELECT project_id, 'week', week, COUNT(*) FROM weekly_users GROUP BY 1, 3
UNION ALL SELECT project_id, 'month', month, COUNT(*) FROM monthly_users GROUP BY 1, 3;
