-- Request counters of the rate limits (src/rate-limit.ts), one row per limited key (`user:<id>`,
-- `ip:<address>`) and fixed window, shared by every API process: each adds what it counted every
-- few hundred milliseconds, in one statement, and reads the total back.
--
-- Unlogged: the rows change several times a second and are worth nothing after a crash (PostgreSQL
-- then empties the table, which only forgives the current window), so they skip the write-ahead log.
-- A fillfactor below 100 leaves room on each page, so that adding to a counter is a HOT update that
-- touches no index.
create unlogged table rate_limits (
  key text not null,
  -- When the window ends, in seconds since the epoch: windows are aligned to the epoch, so every
  -- process (whose clocks agree) names the same window the same way.
  resets_at bigint not null,
  hits integer not null,
  primary key (key, resets_at)
) with (fillfactor = 70);
