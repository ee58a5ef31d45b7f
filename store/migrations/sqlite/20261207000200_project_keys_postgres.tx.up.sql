-- PostgreSQL's hot tables key a project by an integer from this version;
-- SQLite's have since 20261207000100_project_keys.
SELECT 1;
