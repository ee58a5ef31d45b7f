DROP TABLE IF EXISTS projection_checkpoints;
--bun:split
DROP TABLE IF EXISTS api_keys;
--bun:split
DROP TABLE IF EXISTS projects;
--bun:split
DROP TABLE IF EXISTS organizations;
