-- Top events and funnels read an event type's events over a time range for
-- their users: carrying the user columns in the type index makes it a
-- covering index for those reads, instead of a table lookup per event.
DROP INDEX events_project_type_time_idx;

--bun:split

CREATE INDEX events_project_type_time_idx ON events (project_id, type, occurred_at DESC, id DESC, user_id, anonymous_id, rejected);
