-- Idempotency-Key on create (SPEC "Lost updates and retries"): one row per key a user has sent,
-- written in the transaction that creates the task, so a retry that reaches any API process
-- (or this one after a restart) finds it. The response is kept as the text that was sent, so
-- that a replay is the same bytes, whatever happened to the task since.
create table idempotency_keys (
  user_id text not null,
  key text not null check (char_length(key) between 1 and 255),
  -- SHA-256 of the request body as the contract read it: the same key with another body is refused.
  fingerprint text not null,
  task_id bigint not null,
  body text not null,
  location text not null,
  created_at timestamptz not null default now(),
  primary key (user_id, key)
);

-- Keys expire after 24 hours; the pruning statement finds them without reading the others.
create index idempotency_keys_created on idempotency_keys (created_at);
