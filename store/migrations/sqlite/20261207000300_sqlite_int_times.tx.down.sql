-- Times back to the text bun writes by default (see the up migration).

--bun:split

UPDATE api_keys SET
    created_at = CASE WHEN typeof(created_at) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', created_at / 1000000, 'unixepoch') || CASE WHEN created_at % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', created_at % 1000000), '0') ELSE '' END || '+00:00' ELSE created_at END,
    last_used_at = CASE WHEN typeof(last_used_at) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', last_used_at / 1000000, 'unixepoch') || CASE WHEN last_used_at % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', last_used_at % 1000000), '0') ELSE '' END || '+00:00' ELSE last_used_at END,
    revoked_at = CASE WHEN typeof(revoked_at) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', revoked_at / 1000000, 'unixepoch') || CASE WHEN revoked_at % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', revoked_at % 1000000), '0') ELSE '' END || '+00:00' ELSE revoked_at END
WHERE true;

--bun:split

UPDATE end_user_aliases SET
    linked_at = CASE WHEN typeof(linked_at) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', linked_at / 1000000, 'unixepoch') || CASE WHEN linked_at % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', linked_at % 1000000), '0') ELSE '' END || '+00:00' ELSE linked_at END
WHERE true;

--bun:split

UPDATE end_users SET
    first_seen_at = CASE WHEN typeof(first_seen_at) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', first_seen_at / 1000000, 'unixepoch') || CASE WHEN first_seen_at % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', first_seen_at % 1000000), '0') ELSE '' END || '+00:00' ELSE first_seen_at END,
    last_seen_at = CASE WHEN typeof(last_seen_at) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', last_seen_at / 1000000, 'unixepoch') || CASE WHEN last_seen_at % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', last_seen_at % 1000000), '0') ELSE '' END || '+00:00' ELSE last_seen_at END
WHERE true;

--bun:split

UPDATE event_counts_hourly SET
    bucket_start = CASE WHEN typeof(bucket_start) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', bucket_start / 1000000, 'unixepoch') || CASE WHEN bucket_start % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', bucket_start % 1000000), '0') ELSE '' END || '+00:00' ELSE bucket_start END
WHERE true;

--bun:split

UPDATE organizations SET
    created_at = CASE WHEN typeof(created_at) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', created_at / 1000000, 'unixepoch') || CASE WHEN created_at % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', created_at % 1000000), '0') ELSE '' END || '+00:00' ELSE created_at END
WHERE true;

--bun:split

UPDATE orphan_outcomes SET
    at = CASE WHEN typeof(at) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', at / 1000000, 'unixepoch') || CASE WHEN at % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', at % 1000000), '0') ELSE '' END || '+00:00' ELSE at END
WHERE true;

--bun:split

UPDATE projection_checkpoints SET
    updated_at = CASE WHEN typeof(updated_at) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', updated_at / 1000000, 'unixepoch') || CASE WHEN updated_at % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', updated_at % 1000000), '0') ELSE '' END || '+00:00' ELSE updated_at END
WHERE true;

--bun:split

UPDATE projects SET
    created_at = CASE WHEN typeof(created_at) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', created_at / 1000000, 'unixepoch') || CASE WHEN created_at % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', created_at % 1000000), '0') ELSE '' END || '+00:00' ELSE created_at END
WHERE true;

--bun:split

UPDATE quarantined_records SET
    first_seen_at = CASE WHEN typeof(first_seen_at) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', first_seen_at / 1000000, 'unixepoch') || CASE WHEN first_seen_at % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', first_seen_at % 1000000), '0') ELSE '' END || '+00:00' ELSE first_seen_at END,
    last_seen_at = CASE WHEN typeof(last_seen_at) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', last_seen_at / 1000000, 'unixepoch') || CASE WHEN last_seen_at % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', last_seen_at % 1000000), '0') ELSE '' END || '+00:00' ELSE last_seen_at END,
    resolved_at = CASE WHEN typeof(resolved_at) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', resolved_at / 1000000, 'unixepoch') || CASE WHEN resolved_at % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', resolved_at % 1000000), '0') ELSE '' END || '+00:00' ELSE resolved_at END
WHERE true;

--bun:split

UPDATE revenue_hourly SET
    bucket_start = CASE WHEN typeof(bucket_start) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', bucket_start / 1000000, 'unixepoch') || CASE WHEN bucket_start % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', bucket_start % 1000000), '0') ELSE '' END || '+00:00' ELSE bucket_start END
WHERE true;

--bun:split

CREATE TABLE events_us (
    id                text        PRIMARY KEY,
    project_id        integer     NOT NULL,
    type              text        NOT NULL,
    user_id           text,
    anonymous_id      text,
    properties        text        NOT NULL DEFAULT '{}',
    context           text,
    message_id        text,
    key_id            text        NOT NULL,
    status            text        NOT NULL,
    error_details     text,
    client_timestamp  timestamp,
    sent_at           timestamp,
    received_at       timestamp   NOT NULL,
    occurred_at       timestamp   NOT NULL,
    processed_at      timestamp,
    amount            bigint,
    currency          text,
    rejected          integer     NOT NULL DEFAULT 0,
    integrations      text
);

--bun:split

INSERT INTO events_us (id, project_id, type, user_id, anonymous_id, properties, context, message_id, key_id, status, error_details, client_timestamp, sent_at, received_at, occurred_at, processed_at, amount, currency, rejected, integrations)
SELECT id,
       project_id,
       type,
       user_id,
       anonymous_id,
       properties,
       context,
       message_id,
       key_id,
       status,
       error_details,
       CASE WHEN typeof(client_timestamp) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', client_timestamp / 1000000, 'unixepoch') || CASE WHEN client_timestamp % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', client_timestamp % 1000000), '0') ELSE '' END || '+00:00' ELSE client_timestamp END,
       CASE WHEN typeof(sent_at) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', sent_at / 1000000, 'unixepoch') || CASE WHEN sent_at % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', sent_at % 1000000), '0') ELSE '' END || '+00:00' ELSE sent_at END,
       CASE WHEN typeof(received_at) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', received_at / 1000000, 'unixepoch') || CASE WHEN received_at % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', received_at % 1000000), '0') ELSE '' END || '+00:00' ELSE received_at END,
       CASE WHEN typeof(occurred_at) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', occurred_at / 1000000, 'unixepoch') || CASE WHEN occurred_at % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', occurred_at % 1000000), '0') ELSE '' END || '+00:00' ELSE occurred_at END,
       CASE WHEN typeof(processed_at) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', processed_at / 1000000, 'unixepoch') || CASE WHEN processed_at % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', processed_at % 1000000), '0') ELSE '' END || '+00:00' ELSE processed_at END,
       amount,
       currency,
       rejected,
       integrations
FROM events;

--bun:split

DROP TABLE events;

--bun:split

ALTER TABLE events_us RENAME TO events;

--bun:split

CREATE INDEX events_project_time_idx ON events (project_id, occurred_at DESC, id DESC);

--bun:split

CREATE INDEX events_project_type_time_idx ON events (project_id, type, occurred_at DESC, id DESC, user_id, anonymous_id, rejected);

--bun:split

CREATE INDEX events_project_user_time_idx ON events (project_id, user_id, occurred_at DESC, id DESC);

--bun:split

CREATE TABLE daily_users_us (
    project_id  integer NOT NULL,
    day         text    NOT NULL,
    distinct_id text    NOT NULL,
    PRIMARY KEY (project_id, day, distinct_id)
);

--bun:split

INSERT INTO daily_users_us (project_id, day, distinct_id)
SELECT project_id, CASE WHEN typeof(day) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', day / 1000000, 'unixepoch') || CASE WHEN day % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', day % 1000000), '0') ELSE '' END || '+00:00' ELSE day END, distinct_id
FROM daily_users;

--bun:split

DROP TABLE daily_users;

--bun:split

ALTER TABLE daily_users_us RENAME TO daily_users;

--bun:split

CREATE TABLE event_counts_daily_us (
    project_id integer NOT NULL,
    event_type text    NOT NULL,
    day        text    NOT NULL,
    count      bigint  NOT NULL,
    PRIMARY KEY (project_id, event_type, day)
) WITHOUT ROWID;

--bun:split

INSERT INTO event_counts_daily_us (project_id, event_type, day, count)
SELECT project_id, event_type, CASE WHEN typeof(day) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', day / 1000000, 'unixepoch') || CASE WHEN day % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', day % 1000000), '0') ELSE '' END || '+00:00' ELSE day END, count
FROM event_counts_daily;

--bun:split

DROP TABLE event_counts_daily;

--bun:split

ALTER TABLE event_counts_daily_us RENAME TO event_counts_daily;

--bun:split

CREATE INDEX event_counts_daily_time_idx ON event_counts_daily (project_id, day);

--bun:split

CREATE TABLE daily_event_users_us (
    project_id   integer NOT NULL,
    event_type   text    NOT NULL,
    distinct_id  text    NOT NULL,
    day          text    NOT NULL,
    first_at     bigint  NOT NULL,
    last_at      bigint  NOT NULL,
    prev_last_at bigint,
    PRIMARY KEY (project_id, event_type, distinct_id, day)
) WITHOUT ROWID;

--bun:split

INSERT INTO daily_event_users_us (project_id, event_type, distinct_id, day, first_at, last_at, prev_last_at)
SELECT project_id, event_type, distinct_id, CASE WHEN typeof(day) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', day / 1000000, 'unixepoch') || CASE WHEN day % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', day % 1000000), '0') ELSE '' END || '+00:00' ELSE day END, first_at, last_at, prev_last_at
FROM daily_event_users;

--bun:split

DROP TABLE daily_event_users;

--bun:split

ALTER TABLE daily_event_users_us RENAME TO daily_event_users;

--bun:split

CREATE INDEX daily_event_users_range_idx ON daily_event_users (project_id, event_type, day, last_at, first_at, prev_last_at);

--bun:split

CREATE TABLE weekly_users_us (
    project_id  integer NOT NULL,
    distinct_id text    NOT NULL,
    week        text    NOT NULL,
    PRIMARY KEY (project_id, distinct_id, week)
) WITHOUT ROWID;

--bun:split

INSERT INTO weekly_users_us (project_id, distinct_id, week)
SELECT project_id, distinct_id, CASE WHEN typeof(week) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', week / 1000000, 'unixepoch') || CASE WHEN week % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', week % 1000000), '0') ELSE '' END || '+00:00' ELSE week END
FROM weekly_users;

--bun:split

DROP TABLE weekly_users;

--bun:split

ALTER TABLE weekly_users_us RENAME TO weekly_users;

--bun:split

CREATE TABLE monthly_users_us (
    project_id  integer NOT NULL,
    distinct_id text    NOT NULL,
    month       text    NOT NULL,
    PRIMARY KEY (project_id, distinct_id, month)
) WITHOUT ROWID;

--bun:split

INSERT INTO monthly_users_us (project_id, distinct_id, month)
SELECT project_id, distinct_id, CASE WHEN typeof(month) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', month / 1000000, 'unixepoch') || CASE WHEN month % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', month % 1000000), '0') ELSE '' END || '+00:00' ELSE month END
FROM monthly_users;

--bun:split

DROP TABLE monthly_users;

--bun:split

ALTER TABLE monthly_users_us RENAME TO monthly_users;

--bun:split

CREATE TABLE active_user_counts_us (
    project_id   integer NOT NULL,
    period       text    NOT NULL,
    period_start text    NOT NULL,
    users        bigint  NOT NULL,
    PRIMARY KEY (project_id, period, period_start)
) WITHOUT ROWID;

--bun:split

INSERT INTO active_user_counts_us (project_id, period, period_start, users)
SELECT project_id, period, CASE WHEN typeof(period_start) = 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', period_start / 1000000, 'unixepoch') || CASE WHEN period_start % 1000000 <> 0 THEN '.' || rtrim(printf('%06d', period_start % 1000000), '0') ELSE '' END || '+00:00' ELSE period_start END, users
FROM active_user_counts;

--bun:split

DROP TABLE active_user_counts;

--bun:split

ALTER TABLE active_user_counts_us RENAME TO active_user_counts;

