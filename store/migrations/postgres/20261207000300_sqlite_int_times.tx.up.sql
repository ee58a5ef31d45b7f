-- SQLite's times become int64 µs (store.sqliteDialect); PostgreSQL's
-- timestamptz is 8 bytes already.
SELECT 1;
