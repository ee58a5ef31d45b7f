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
    project_id   text   NOT NULL,
    event_type   text   NOT NULL,
    distinct_id  text   NOT NULL,
    day          text   NOT NULL,
    first_at     bigint NOT NULL,
    last_at      bigint NOT NULL,
    prev_last_at bigint,
    PRIMARY KEY (project_id, event_type, distinct_id, day)
) WITHOUT ROWID;

--bun:split

CREATE INDEX daily_event_users_range_idx ON daily_event_users (project_id, event_type, day, last_at, first_at, prev_last_at);

--bun:split

-- occurred_at is stored 'YYYY-MM-DD HH:MM:SS[.f…]+00:00' (fraction digits
-- without trailing zeros): whole seconds, then the fraction padded to µs.
INSERT INTO daily_event_users (project_id, event_type, distinct_id, day, first_at, last_at, prev_last_at)
SELECT project_id, type, distinct_id, day, first_at, last_at,
       LAG(last_at) OVER (PARTITION BY project_id, type, distinct_id ORDER BY day)
FROM (SELECT project_id, type, distinct_id, day, MIN(at) AS first_at, MAX(at) AS last_at
      FROM (SELECT project_id, type, COALESCE(user_id, anonymous_id) AS distinct_id,
                   substr(occurred_at, 1, 10) || ' 00:00:00+00:00' AS day,
                   CAST(strftime('%s', substr(occurred_at, 1, 19)) AS INTEGER) * 1000000 +
                   CASE WHEN substr(occurred_at, 20, 1) = '.'
                        THEN CAST(substr(substr(occurred_at, 21, instr(occurred_at, '+') - 21) || '00000', 1, 6) AS INTEGER)
                        ELSE 0 END AS at
            FROM events WHERE NOT rejected AND COALESCE(user_id, anonymous_id) IS NOT NULL)
      GROUP BY 1, 2, 3, 4);
