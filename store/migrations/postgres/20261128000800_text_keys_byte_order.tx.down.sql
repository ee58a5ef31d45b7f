-- Back to the database's default collation.
ALTER TABLE events
    ALTER COLUMN type TYPE text COLLATE "default",
    ALTER COLUMN user_id TYPE text COLLATE "default",
    ALTER COLUMN anonymous_id TYPE text COLLATE "default",
    ALTER COLUMN message_id TYPE text COLLATE "default",
    ALTER COLUMN status TYPE text COLLATE "default",
    ALTER COLUMN currency TYPE text COLLATE "default";

--bun:split

ALTER TABLE end_users ALTER COLUMN external_id TYPE text COLLATE "default";

--bun:split

ALTER TABLE end_user_aliases
    ALTER COLUMN anonymous_id TYPE text COLLATE "default",
    ALTER COLUMN external_id TYPE text COLLATE "default";

--bun:split

ALTER TABLE event_counts_hourly ALTER COLUMN event_type TYPE text COLLATE "default";

--bun:split

ALTER TABLE event_counts_daily ALTER COLUMN event_type TYPE text COLLATE "default";

--bun:split

ALTER TABLE revenue_hourly ALTER COLUMN currency TYPE text COLLATE "default";

--bun:split

ALTER TABLE daily_event_users
    ALTER COLUMN event_type TYPE text COLLATE "default",
    ALTER COLUMN distinct_id TYPE text COLLATE "default";

--bun:split

ALTER TABLE daily_users ALTER COLUMN distinct_id TYPE text COLLATE "default";

--bun:split

ALTER TABLE weekly_users ALTER COLUMN distinct_id TYPE text COLLATE "default";

--bun:split

ALTER TABLE monthly_users ALTER COLUMN distinct_id TYPE text COLLATE "default";

--bun:split

ALTER TABLE active_user_counts ALTER COLUMN period TYPE text COLLATE "default";
