-- Records a projection could not apply, set aside so the projection moves
-- on (the checkpoint passes them in the same transaction) and kept whole so
-- they can be reprocessed once the cause is fixed. Operators read them
-- through the admin API; boost_reader gets no grant.
CREATE TABLE quarantined_records (
    id             uuid        PRIMARY KEY,
    projection     text        NOT NULL,
    topic          text        NOT NULL,
    partition      integer     NOT NULL,
    record_offset  bigint      NOT NULL,
    record_key     bytea,
    record_value   bytea       NOT NULL,
    project_id     text,
    event_id       text,
    event_type     text,
    error          text        NOT NULL,
    attempts       integer     NOT NULL,
    first_seen_at  timestamptz NOT NULL,
    last_seen_at   timestamptz NOT NULL,
    status         text        NOT NULL,
    resolved_at    timestamptz
);

--bun:split

CREATE UNIQUE INDEX quarantined_records_position_idx ON quarantined_records (projection, topic, partition, record_offset);

--bun:split

CREATE INDEX quarantined_records_seen_idx ON quarantined_records (last_seen_at DESC, id DESC);
