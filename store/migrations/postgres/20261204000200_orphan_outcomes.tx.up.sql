-- Outcomes (EventProcessed, EventFailed) of events the events projection
-- has not stored: the event was quarantined, and its outcome, later in the
-- log, found no row to update. Kept here until the event is applied (by
-- reprocessing it), which then takes its outcome, as if in log order.
CREATE TABLE orphan_outcomes (
    event_id    uuid        PRIMARY KEY,
    project_id  uuid        NOT NULL,
    status      text        NOT NULL,
    reason      text,
    at          timestamptz NOT NULL
);
