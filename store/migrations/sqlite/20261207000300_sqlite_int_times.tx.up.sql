-- Every time in the SQLite read model becomes int64 µs since the epoch
-- instead of the text 'YYYY-MM-DD HH:MM:SS[.ffffff]+00:00' bun wrote
-- (store.sqliteDialect writes and reads them so from this version): 8
-- bytes instead of 25-32 in every row and index entry that holds one, the
-- same order. A column declared timestamp keeps its type (its numeric
-- affinity stores the integer as it is) and is converted in place, except
-- events, rebuilt with its indexes (cheaper than moving every entry of
-- three indexes); a day, week or month column was declared text, whose
-- affinity would store the integer as text, so its table is rebuilt with
-- the column declared date. The text holds whole seconds, then the
-- fraction without trailing zeros, padded here to µs; only text is
-- converted, so running it over integers changes nothing.

--bun:split

UPDATE api_keys SET
    created_at = CASE WHEN typeof(created_at) = 'text' THEN CAST(strftime('%s', substr(created_at, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(created_at, 20, 1) = '.' THEN CAST(substr(substr(created_at, 21, instr(created_at, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE created_at END,
    last_used_at = CASE WHEN typeof(last_used_at) = 'text' THEN CAST(strftime('%s', substr(last_used_at, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(last_used_at, 20, 1) = '.' THEN CAST(substr(substr(last_used_at, 21, instr(last_used_at, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE last_used_at END,
    revoked_at = CASE WHEN typeof(revoked_at) = 'text' THEN CAST(strftime('%s', substr(revoked_at, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(revoked_at, 20, 1) = '.' THEN CAST(substr(substr(revoked_at, 21, instr(revoked_at, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE revoked_at END
WHERE true;

--bun:split

UPDATE end_user_aliases SET
    linked_at = CASE WHEN typeof(linked_at) = 'text' THEN CAST(strftime('%s', substr(linked_at, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(linked_at, 20, 1) = '.' THEN CAST(substr(substr(linked_at, 21, instr(linked_at, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE linked_at END
WHERE true;

--bun:split

UPDATE end_users SET
    first_seen_at = CASE WHEN typeof(first_seen_at) = 'text' THEN CAST(strftime('%s', substr(first_seen_at, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(first_seen_at, 20, 1) = '.' THEN CAST(substr(substr(first_seen_at, 21, instr(first_seen_at, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE first_seen_at END,
    last_seen_at = CASE WHEN typeof(last_seen_at) = 'text' THEN CAST(strftime('%s', substr(last_seen_at, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(last_seen_at, 20, 1) = '.' THEN CAST(substr(substr(last_seen_at, 21, instr(last_seen_at, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE last_seen_at END
WHERE true;

--bun:split

UPDATE event_counts_hourly SET
    bucket_start = CASE WHEN typeof(bucket_start) = 'text' THEN CAST(strftime('%s', substr(bucket_start, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(bucket_start, 20, 1) = '.' THEN CAST(substr(substr(bucket_start, 21, instr(bucket_start, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE bucket_start END
WHERE true;

--bun:split

UPDATE organizations SET
    created_at = CASE WHEN typeof(created_at) = 'text' THEN CAST(strftime('%s', substr(created_at, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(created_at, 20, 1) = '.' THEN CAST(substr(substr(created_at, 21, instr(created_at, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE created_at END
WHERE true;

--bun:split

UPDATE orphan_outcomes SET
    at = CASE WHEN typeof(at) = 'text' THEN CAST(strftime('%s', substr(at, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(at, 20, 1) = '.' THEN CAST(substr(substr(at, 21, instr(at, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE at END
WHERE true;

--bun:split

UPDATE projection_checkpoints SET
    updated_at = CASE WHEN typeof(updated_at) = 'text' THEN CAST(strftime('%s', substr(updated_at, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(updated_at, 20, 1) = '.' THEN CAST(substr(substr(updated_at, 21, instr(updated_at, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE updated_at END
WHERE true;

--bun:split

UPDATE projects SET
    created_at = CASE WHEN typeof(created_at) = 'text' THEN CAST(strftime('%s', substr(created_at, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(created_at, 20, 1) = '.' THEN CAST(substr(substr(created_at, 21, instr(created_at, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE created_at END
WHERE true;

--bun:split

UPDATE quarantined_records SET
    first_seen_at = CASE WHEN typeof(first_seen_at) = 'text' THEN CAST(strftime('%s', substr(first_seen_at, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(first_seen_at, 20, 1) = '.' THEN CAST(substr(substr(first_seen_at, 21, instr(first_seen_at, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE first_seen_at END,
    last_seen_at = CASE WHEN typeof(last_seen_at) = 'text' THEN CAST(strftime('%s', substr(last_seen_at, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(last_seen_at, 20, 1) = '.' THEN CAST(substr(substr(last_seen_at, 21, instr(last_seen_at, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE last_seen_at END,
    resolved_at = CASE WHEN typeof(resolved_at) = 'text' THEN CAST(strftime('%s', substr(resolved_at, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(resolved_at, 20, 1) = '.' THEN CAST(substr(substr(resolved_at, 21, instr(resolved_at, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE resolved_at END
WHERE true;

--bun:split

UPDATE revenue_hourly SET
    bucket_start = CASE WHEN typeof(bucket_start) = 'text' THEN CAST(strftime('%s', substr(bucket_start, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(bucket_start, 20, 1) = '.' THEN CAST(substr(substr(bucket_start, 21, instr(bucket_start, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE bucket_start END
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
       CASE WHEN typeof(client_timestamp) = 'text' THEN CAST(strftime('%s', substr(client_timestamp, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(client_timestamp, 20, 1) = '.' THEN CAST(substr(substr(client_timestamp, 21, instr(client_timestamp, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE client_timestamp END,
       CASE WHEN typeof(sent_at) = 'text' THEN CAST(strftime('%s', substr(sent_at, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(sent_at, 20, 1) = '.' THEN CAST(substr(substr(sent_at, 21, instr(sent_at, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE sent_at END,
       CASE WHEN typeof(received_at) = 'text' THEN CAST(strftime('%s', substr(received_at, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(received_at, 20, 1) = '.' THEN CAST(substr(substr(received_at, 21, instr(received_at, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE received_at END,
       CASE WHEN typeof(occurred_at) = 'text' THEN CAST(strftime('%s', substr(occurred_at, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(occurred_at, 20, 1) = '.' THEN CAST(substr(substr(occurred_at, 21, instr(occurred_at, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE occurred_at END,
       CASE WHEN typeof(processed_at) = 'text' THEN CAST(strftime('%s', substr(processed_at, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(processed_at, 20, 1) = '.' THEN CAST(substr(substr(processed_at, 21, instr(processed_at, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE processed_at END,
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
    day         date    NOT NULL,
    distinct_id text    NOT NULL,
    PRIMARY KEY (project_id, day, distinct_id)
);

--bun:split

INSERT INTO daily_users_us (project_id, day, distinct_id)
SELECT project_id, CASE WHEN typeof(day) = 'text' THEN CAST(strftime('%s', substr(day, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(day, 20, 1) = '.' THEN CAST(substr(substr(day, 21, instr(day, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE day END, distinct_id
FROM daily_users;

--bun:split

DROP TABLE daily_users;

--bun:split

ALTER TABLE daily_users_us RENAME TO daily_users;

--bun:split

CREATE TABLE event_counts_daily_us (
    project_id integer NOT NULL,
    event_type text    NOT NULL,
    day        date    NOT NULL,
    count      bigint  NOT NULL,
    PRIMARY KEY (project_id, event_type, day)
) WITHOUT ROWID;

--bun:split

INSERT INTO event_counts_daily_us (project_id, event_type, day, count)
SELECT project_id, event_type, CASE WHEN typeof(day) = 'text' THEN CAST(strftime('%s', substr(day, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(day, 20, 1) = '.' THEN CAST(substr(substr(day, 21, instr(day, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE day END, count
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
    day          date    NOT NULL,
    first_at     bigint  NOT NULL,
    last_at      bigint  NOT NULL,
    prev_last_at bigint,
    PRIMARY KEY (project_id, event_type, distinct_id, day)
) WITHOUT ROWID;

--bun:split

INSERT INTO daily_event_users_us (project_id, event_type, distinct_id, day, first_at, last_at, prev_last_at)
SELECT project_id, event_type, distinct_id, CASE WHEN typeof(day) = 'text' THEN CAST(strftime('%s', substr(day, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(day, 20, 1) = '.' THEN CAST(substr(substr(day, 21, instr(day, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE day END, first_at, last_at, prev_last_at
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
    week        date    NOT NULL,
    PRIMARY KEY (project_id, distinct_id, week)
) WITHOUT ROWID;

--bun:split

INSERT INTO weekly_users_us (project_id, distinct_id, week)
SELECT project_id, distinct_id, CASE WHEN typeof(week) = 'text' THEN CAST(strftime('%s', substr(week, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(week, 20, 1) = '.' THEN CAST(substr(substr(week, 21, instr(week, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE week END
FROM weekly_users;

--bun:split

DROP TABLE weekly_users;

--bun:split

ALTER TABLE weekly_users_us RENAME TO weekly_users;

--bun:split

CREATE TABLE monthly_users_us (
    project_id  integer NOT NULL,
    distinct_id text    NOT NULL,
    month       date    NOT NULL,
    PRIMARY KEY (project_id, distinct_id, month)
) WITHOUT ROWID;

--bun:split

INSERT INTO monthly_users_us (project_id, distinct_id, month)
SELECT project_id, distinct_id, CASE WHEN typeof(month) = 'text' THEN CAST(strftime('%s', substr(month, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(month, 20, 1) = '.' THEN CAST(substr(substr(month, 21, instr(month, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE month END
FROM monthly_users;

--bun:split

DROP TABLE monthly_users;

--bun:split

ALTER TABLE monthly_users_us RENAME TO monthly_users;

--bun:split

CREATE TABLE active_user_counts_us (
    project_id   integer NOT NULL,
    period       text    NOT NULL,
    period_start date    NOT NULL,
    users        bigint  NOT NULL,
    PRIMARY KEY (project_id, period, period_start)
) WITHOUT ROWID;

--bun:split

INSERT INTO active_user_counts_us (project_id, period, period_start, users)
SELECT project_id, period, CASE WHEN typeof(period_start) = 'text' THEN CAST(strftime('%s', substr(period_start, 1, 19)) AS INTEGER) * 1000000 + CASE WHEN substr(period_start, 20, 1) = '.' THEN CAST(substr(substr(period_start, 21, instr(period_start, '+') - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END ELSE period_start END, users
FROM active_user_counts;

--bun:split

DROP TABLE active_user_counts;

--bun:split

ALTER TABLE active_user_counts_us RENAME TO active_user_counts;
