DROP INDEX end_users_project_first_seen_idx;

--bun:split

DROP TABLE active_user_counts;

--bun:split

DROP TABLE monthly_users;

--bun:split

DROP TABLE weekly_users;

--bun:split

DROP TABLE daily_event_users;

--bun:split

DROP TABLE event_counts_daily;
