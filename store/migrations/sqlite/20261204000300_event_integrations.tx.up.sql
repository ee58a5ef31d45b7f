-- Segment's integrations (the sender's routing hints), kept as sent.
ALTER TABLE events ADD COLUMN integrations text;
