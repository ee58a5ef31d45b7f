-- Events refused at the command (EventRejected) are stored so their status
-- can be read, but analytics never count them: mark them.
ALTER TABLE events ADD COLUMN rejected boolean NOT NULL DEFAULT false;
