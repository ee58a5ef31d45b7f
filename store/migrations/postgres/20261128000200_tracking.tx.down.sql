DROP TABLE IF EXISTS revenue_hourly;
--bun:split
DROP TABLE IF EXISTS daily_users;
--bun:split
DROP TABLE IF EXISTS event_counts_hourly;
--bun:split
DROP TABLE IF EXISTS end_user_aliases;
--bun:split
DROP TABLE IF EXISTS end_users;
--bun:split
DROP TABLE IF EXISTS events;
