-- Tracked events, end users and the analytics roll-ups, all keyed by project.
CREATE TABLE events (
    id                text        PRIMARY KEY,
    project_id        text        NOT NULL,
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
    currency          text
);

--bun:split

CREATE INDEX events_project_time_idx ON events (project_id, occurred_at DESC, id DESC);

--bun:split

CREATE INDEX events_project_type_time_idx ON events (project_id, type, occurred_at DESC, id DESC);

--bun:split

CREATE INDEX events_project_user_time_idx ON events (project_id, user_id, occurred_at DESC, id DESC);

--bun:split

CREATE TABLE end_users (
    project_id     text        NOT NULL,
    external_id    text        NOT NULL,
    traits         text        NOT NULL DEFAULT '{}',
    -- per trait: the (occurred_at, event id) that set it, so merges are
    -- last-writer-wins by event time whatever order events arrive in
    trait_versions text        NOT NULL DEFAULT '{}',
    first_seen_at  timestamp   NOT NULL,
    last_seen_at   timestamp   NOT NULL,
    event_count    bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, external_id)
);

--bun:split

CREATE INDEX end_users_project_last_seen_idx ON end_users (project_id, last_seen_at DESC, external_id);

--bun:split

CREATE TABLE end_user_aliases (
    project_id    text        NOT NULL,
    anonymous_id  text        NOT NULL,
    external_id   text        NOT NULL,
    linked_at     timestamp   NOT NULL,
    PRIMARY KEY (project_id, anonymous_id)
);

--bun:split

CREATE INDEX end_user_aliases_user_idx ON end_user_aliases (project_id, external_id);

--bun:split

CREATE TABLE event_counts_hourly (
    project_id   text        NOT NULL,
    event_type   text        NOT NULL,
    bucket_start timestamp   NOT NULL,
    count        bigint      NOT NULL,
    PRIMARY KEY (project_id, event_type, bucket_start)
);

--bun:split

CREATE INDEX event_counts_hourly_time_idx ON event_counts_hourly (project_id, bucket_start);

--bun:split

CREATE TABLE daily_users (
    project_id  text  NOT NULL,
    day         text  NOT NULL,
    distinct_id text  NOT NULL,
    PRIMARY KEY (project_id, day, distinct_id)
);

--bun:split

CREATE TABLE revenue_hourly (
    project_id   text        NOT NULL,
    currency     text        NOT NULL,
    bucket_start timestamp   NOT NULL,
    amount       bigint      NOT NULL,
    count        bigint      NOT NULL,
    PRIMARY KEY (project_id, currency, bucket_start)
);
