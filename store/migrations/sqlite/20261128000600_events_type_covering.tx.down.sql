DROP INDEX events_project_type_time_idx;

--bun:split

CREATE INDEX events_project_type_time_idx ON events (project_id, type, occurred_at DESC, id DESC);
