DROP INDEX daily_event_users_range_idx;

--bun:split

ALTER TABLE daily_event_users DROP CONSTRAINT daily_event_users_pkey,
    ADD PRIMARY KEY (project_id, event_type, day, distinct_id);

--bun:split

ALTER TABLE daily_event_users DROP COLUMN first_at, DROP COLUMN last_at, DROP COLUMN prev_last_at;
