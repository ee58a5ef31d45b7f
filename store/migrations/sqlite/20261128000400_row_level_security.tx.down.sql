-- SQLite has no row-level security; `boost dev` is single-tenant in
-- practice and every query filters by project. Kept so both dialects share
-- one migration history.
SELECT 1;
