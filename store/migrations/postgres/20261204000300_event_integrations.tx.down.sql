ALTER TABLE events DROP COLUMN integrations;
