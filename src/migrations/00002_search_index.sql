-- Substring search (q) for one user: a GIN index over the user id (btree_gin) and the trigrams
-- (pg_trgm) of title and description answers `ilike '%…%'` without reading another user's entries.
-- Title and description are indexed as one text, so that a search intersects the user's entries
-- with the term's once, not once per column (a rare word took 15-20% less time than with
-- two indexed columns); the search then checks each column on the few rows found. Both extensions
-- are trusted (a database owner may create them) and ship with PostgreSQL, Neon included.
create extension if not exists pg_trgm;
create extension if not exists btree_gin;

-- New entries wait in GIN's pending list, which every search through the index also reads, until
-- an insert that overflows it (or a vacuum) merges them. With the default limit of 4 MB a rare-word
-- search took about 200 ms instead of 2 after 15,000 creates; at 256 kB no search slowed measurably
-- and a create cost what it costs with the b-trees alone (0.77 against 0.78 ms median), where
-- fastupdate off (each insert merging its own entries) made it 1.4 to 2.1 ms (scripts/bench-scale.ts).
--
-- The operator class is named through the schema the extension lives in, which need not be on the
-- search_path (a database migrated into a schema of its own, as the tests do).
do $$
begin
  execute format(
    'create index tasks_user_search on tasks using gin (user_id, (title || '' '' || coalesce(description, '''')) %s.gin_trgm_ops) with (gin_pending_list_limit = 256)',
    (select extnamespace::regnamespace from pg_extension where extname = 'pg_trgm')
  );
end
$$;
