-- SQLite's hot tables key a project by an integer from this version
-- (project_keys); PostgreSQL's keep the UUID, 16 bytes already.
SELECT 1;
