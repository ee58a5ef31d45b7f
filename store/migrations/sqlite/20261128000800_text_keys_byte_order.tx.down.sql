-- SQLite compares text byte by byte already (BINARY); PostgreSQL's text
-- keys are made to compare the same way in this version.
SELECT 1;
