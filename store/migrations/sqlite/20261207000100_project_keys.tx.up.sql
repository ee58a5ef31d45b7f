-- The hot tables key a project by a small integer instead of its
-- 36-character UUID: the project is the first column of every key of every
-- one of them, and narrowing it makes the rows and index entries the
-- events projection writes a third shorter (bench/narrowings.go: 1.2-1.4x
-- the rows a second). project_keys hands the integers out; it is only ever
-- added to, and no replay rebuilds it, so a project's key never changes.
-- The API still speaks UUIDs: store.ProjectKeySQL turns one into its key
-- inside a query, store.ProjectKeys before a projection writes.
CREATE TABLE project_keys (
    key        integer PRIMARY KEY,
    project_id text    NOT NULL UNIQUE
);

--bun:split

INSERT INTO project_keys (project_id)
SELECT id FROM projects
UNION SELECT project_id FROM events
UNION SELECT project_id FROM end_users
UNION SELECT project_id FROM end_user_aliases
UNION SELECT project_id FROM event_counts_hourly
UNION SELECT project_id FROM daily_users
UNION SELECT project_id FROM revenue_hourly
UNION SELECT project_id FROM event_counts_daily
UNION SELECT project_id FROM daily_event_users
UNION SELECT project_id FROM weekly_users
UNION SELECT project_id FROM monthly_users
UNION SELECT project_id FROM active_user_counts
ORDER BY 1;

--bun:split

CREATE TABLE events_keyed (
    id                text        PRIMARY KEY,
    project_id integer NOT NULL,
    type              text        NOT NULL,
    user_id           text,
    anonymous_id      text,
    properties        text        NOT NULL DEFAULT '{}',
    context           text,
    message_id        text,
    key_id            text        NOT NULL,
    status            text        NOT NULL,
    error_details     text,
    client_timestamp  timestamp  ,
    sent_at           timestamp  ,
    received_at       timestamp   NOT NULL,
    occurred_at       timestamp   NOT NULL,
    processed_at      timestamp  ,
    amount            bigint,
    currency          text,
    rejected          integer     NOT NULL DEFAULT 0,
    integrations      text
);

--bun:split

INSERT INTO events_keyed (id, project_id, type, user_id, anonymous_id, properties, context, message_id, key_id, status, error_details, client_timestamp, sent_at, received_at, occurred_at, processed_at, amount, currency, rejected, integrations)
SELECT t.id, k.key, t.type, t.user_id, t.anonymous_id, t.properties, t.context, t.message_id, t.key_id, t.status, t.error_details, t.client_timestamp, t.sent_at, t.received_at, t.occurred_at, t.processed_at, t.amount, t.currency, t.rejected, t.integrations
FROM events AS t JOIN project_keys AS k ON k.project_id = t.project_id;

--bun:split

DROP TABLE events;

--bun:split

ALTER TABLE events_keyed RENAME TO events;

--bun:split

CREATE INDEX events_project_time_idx ON events (project_id, occurred_at DESC, id DESC);

--bun:split

CREATE INDEX events_project_type_time_idx ON events (project_id, type, occurred_at DESC, id DESC, user_id, anonymous_id, rejected);

--bun:split

CREATE INDEX events_project_user_time_idx ON events (project_id, user_id, occurred_at DESC, id DESC);

--bun:split

CREATE TABLE end_users_keyed (
    project_id integer NOT NULL,
    external_id    text        NOT NULL,
    traits         text        NOT NULL DEFAULT '{}',
    trait_versions text        NOT NULL DEFAULT '{}',
    first_seen_at  timestamp   NOT NULL,
    last_seen_at   timestamp   NOT NULL,
    event_count    bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, external_id)
);

--bun:split

INSERT INTO end_users_keyed (project_id, external_id, traits, trait_versions, first_seen_at, last_seen_at, event_count)
SELECT k.key, t.external_id, t.traits, t.trait_versions, t.first_seen_at, t.last_seen_at, t.event_count
FROM end_users AS t JOIN project_keys AS k ON k.project_id = t.project_id;

--bun:split

DROP TABLE end_users;

--bun:split

ALTER TABLE end_users_keyed RENAME TO end_users;

--bun:split

CREATE INDEX end_users_project_first_seen_idx ON end_users (project_id, first_seen_at);

--bun:split

CREATE INDEX end_users_project_last_seen_idx ON end_users (project_id, last_seen_at DESC, external_id);

--bun:split

CREATE TABLE end_user_aliases_keyed (
    project_id integer NOT NULL,
    anonymous_id  text        NOT NULL,
    external_id   text        NOT NULL,
    linked_at     timestamp   NOT NULL,
    PRIMARY KEY (project_id, anonymous_id)
);

--bun:split

INSERT INTO end_user_aliases_keyed (project_id, anonymous_id, external_id, linked_at)
SELECT k.key, t.anonymous_id, t.external_id, t.linked_at
FROM end_user_aliases AS t JOIN project_keys AS k ON k.project_id = t.project_id;

--bun:split

DROP TABLE end_user_aliases;

--bun:split

ALTER TABLE end_user_aliases_keyed RENAME TO end_user_aliases;

--bun:split

CREATE INDEX end_user_aliases_user_idx ON end_user_aliases (project_id, external_id);

--bun:split

CREATE TABLE event_counts_hourly_keyed (
    project_id integer NOT NULL,
    event_type   text        NOT NULL,
    bucket_start timestamp   NOT NULL,
    count        bigint      NOT NULL,
    PRIMARY KEY (project_id, event_type, bucket_start)
);

--bun:split

INSERT INTO event_counts_hourly_keyed (project_id, event_type, bucket_start, count)
SELECT k.key, t.event_type, t.bucket_start, t.count
FROM event_counts_hourly AS t JOIN project_keys AS k ON k.project_id = t.project_id;

--bun:split

DROP TABLE event_counts_hourly;

--bun:split

ALTER TABLE event_counts_hourly_keyed RENAME TO event_counts_hourly;

--bun:split

CREATE INDEX event_counts_hourly_time_idx ON event_counts_hourly (project_id, bucket_start);

--bun:split

CREATE TABLE daily_users_keyed (
    project_id integer NOT NULL,
    day         text  NOT NULL,
    distinct_id text  NOT NULL,
    PRIMARY KEY (project_id, day, distinct_id)
);

--bun:split

INSERT INTO daily_users_keyed (project_id, day, distinct_id)
SELECT k.key, t.day, t.distinct_id
FROM daily_users AS t JOIN project_keys AS k ON k.project_id = t.project_id;

--bun:split

DROP TABLE daily_users;

--bun:split

ALTER TABLE daily_users_keyed RENAME TO daily_users;

--bun:split

CREATE TABLE revenue_hourly_keyed (
    project_id integer NOT NULL,
    currency     text        NOT NULL,
    bucket_start timestamp   NOT NULL,
    amount       bigint      NOT NULL,
    count        bigint      NOT NULL,
    PRIMARY KEY (project_id, currency, bucket_start)
);

--bun:split

INSERT INTO revenue_hourly_keyed (project_id, currency, bucket_start, amount, count)
SELECT k.key, t.currency, t.bucket_start, t.amount, t.count
FROM revenue_hourly AS t JOIN project_keys AS k ON k.project_id = t.project_id;

--bun:split

DROP TABLE revenue_hourly;

--bun:split

ALTER TABLE revenue_hourly_keyed RENAME TO revenue_hourly;

--bun:split

CREATE TABLE event_counts_daily_keyed (
    project_id integer NOT NULL,
    event_type text   NOT NULL,
    day        text   NOT NULL,
    count      bigint NOT NULL,
    PRIMARY KEY (project_id, event_type, day)
) WITHOUT ROWID;

--bun:split

INSERT INTO event_counts_daily_keyed (project_id, event_type, day, count)
SELECT k.key, t.event_type, t.day, t.count
FROM event_counts_daily AS t JOIN project_keys AS k ON k.project_id = t.project_id;

--bun:split

DROP TABLE event_counts_daily;

--bun:split

ALTER TABLE event_counts_daily_keyed RENAME TO event_counts_daily;

--bun:split

CREATE INDEX event_counts_daily_time_idx ON event_counts_daily (project_id, day);

--bun:split

CREATE TABLE daily_event_users_keyed (
    project_id integer NOT NULL,
    event_type   text   NOT NULL,
    distinct_id  text   NOT NULL,
    day          text   NOT NULL,
    first_at     bigint NOT NULL,
    last_at      bigint NOT NULL,
    prev_last_at bigint,
    PRIMARY KEY (project_id, event_type, distinct_id, day)
) WITHOUT ROWID;

--bun:split

INSERT INTO daily_event_users_keyed (project_id, event_type, distinct_id, day, first_at, last_at, prev_last_at)
SELECT k.key, t.event_type, t.distinct_id, t.day, t.first_at, t.last_at, t.prev_last_at
FROM daily_event_users AS t JOIN project_keys AS k ON k.project_id = t.project_id;

--bun:split

DROP TABLE daily_event_users;

--bun:split

ALTER TABLE daily_event_users_keyed RENAME TO daily_event_users;

--bun:split

CREATE INDEX daily_event_users_range_idx ON daily_event_users (project_id, event_type, day, last_at, first_at, prev_last_at);

--bun:split

CREATE TABLE weekly_users_keyed (
    project_id integer NOT NULL,
    distinct_id text NOT NULL,
    week        text NOT NULL,
    PRIMARY KEY (project_id, distinct_id, week)
) WITHOUT ROWID;

--bun:split

INSERT INTO weekly_users_keyed (project_id, distinct_id, week)
SELECT k.key, t.distinct_id, t.week
FROM weekly_users AS t JOIN project_keys AS k ON k.project_id = t.project_id;

--bun:split

DROP TABLE weekly_users;

--bun:split

ALTER TABLE weekly_users_keyed RENAME TO weekly_users;

--bun:split

CREATE TABLE monthly_users_keyed (
    project_id integer NOT NULL,
    distinct_id text NOT NULL,
    month       text NOT NULL,
    PRIMARY KEY (project_id, distinct_id, month)
) WITHOUT ROWID;

--bun:split

INSERT INTO monthly_users_keyed (project_id, distinct_id, month)
SELECT k.key, t.distinct_id, t.month
FROM monthly_users AS t JOIN project_keys AS k ON k.project_id = t.project_id;

--bun:split

DROP TABLE monthly_users;

--bun:split

ALTER TABLE monthly_users_keyed RENAME TO monthly_users;

--bun:split

CREATE TABLE active_user_counts_keyed (
    project_id integer NOT NULL,
    period       text   NOT NULL,
    period_start text   NOT NULL,
    users        bigint NOT NULL,
    PRIMARY KEY (project_id, period, period_start)
) WITHOUT ROWID;

--bun:split

INSERT INTO active_user_counts_keyed (project_id, period, period_start, users)
SELECT k.key, t.period, t.period_start, t.users
FROM active_user_counts AS t JOIN project_keys AS k ON k.project_id = t.project_id;

--bun:split

DROP TABLE active_user_counts;

--bun:split

ALTER TABLE active_user_counts_keyed RENAME TO active_user_counts;
