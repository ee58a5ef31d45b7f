ALTER TABLE events DROP COLUMN rejected;
