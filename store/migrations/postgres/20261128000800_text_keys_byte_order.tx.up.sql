-- Text keys compare byte by byte, as SQLite compares them, whatever the
-- server's locale: lists ordered or paged by a text key (users by external
-- id, top events by type on equal counts), the users' prefix search (a
-- range from the prefix to the prefix followed by U+10FFFF, exact only in
-- byte order) and every index on these columns give the same answers on
-- both databases. Byte comparison is also the cheapest: index builds over
-- text keys, the bulk of a replay, take about a fifth less time.
--
-- A collation change keeps the rows where they are; PostgreSQL rebuilds the
-- indexes on the changed columns, once per table.
ALTER TABLE events
    ALTER COLUMN type TYPE text COLLATE "C",
    ALTER COLUMN user_id TYPE text COLLATE "C",
    ALTER COLUMN anonymous_id TYPE text COLLATE "C",
    ALTER COLUMN message_id TYPE text COLLATE "C",
    ALTER COLUMN status TYPE text COLLATE "C",
    ALTER COLUMN currency TYPE text COLLATE "C";

--bun:split

ALTER TABLE end_users ALTER COLUMN external_id TYPE text COLLATE "C";

--bun:split

ALTER TABLE end_user_aliases
    ALTER COLUMN anonymous_id TYPE text COLLATE "C",
    ALTER COLUMN external_id TYPE text COLLATE "C";

--bun:split

ALTER TABLE event_counts_hourly ALTER COLUMN event_type TYPE text COLLATE "C";

--bun:split

ALTER TABLE event_counts_daily ALTER COLUMN event_type TYPE text COLLATE "C";

--bun:split

ALTER TABLE revenue_hourly ALTER COLUMN currency TYPE text COLLATE "C";

--bun:split

ALTER TABLE daily_event_users
    ALTER COLUMN event_type TYPE text COLLATE "C",
    ALTER COLUMN distinct_id TYPE text COLLATE "C";

--bun:split

ALTER TABLE daily_users ALTER COLUMN distinct_id TYPE text COLLATE "C";

--bun:split

ALTER TABLE weekly_users ALTER COLUMN distinct_id TYPE text COLLATE "C";

--bun:split

ALTER TABLE monthly_users ALTER COLUMN distinct_id TYPE text COLLATE "C";

--bun:split

ALTER TABLE active_user_counts ALTER COLUMN period TYPE text COLLATE "C";
