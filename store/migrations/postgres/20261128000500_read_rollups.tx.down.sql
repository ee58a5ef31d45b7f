DROP INDEX end_users_project_first_seen_idx;

--bun:split

DROP TABLE active_user_counts, monthly_users, weekly_users, daily_event_users, event_counts_daily;
