DROP TABLE daily_event_users;

--bun:split

CREATE TABLE daily_event_users (
    project_id  text NOT NULL,
    day         text NOT NULL,
    event_type  text NOT NULL,
    distinct_id text NOT NULL,
    PRIMARY KEY (project_id, event_type, day, distinct_id)
) WITHOUT ROWID;

--bun:split

INSERT INTO daily_event_users (project_id, day, event_type, distinct_id)
SELECT DISTINCT project_id, substr(occurred_at, 1, 10) || ' 00:00:00+00:00', type, COALESCE(user_id, anonymous_id)
FROM events WHERE NOT rejected AND COALESCE(user_id, anonymous_id) IS NOT NULL;
