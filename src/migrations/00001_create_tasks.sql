create table tasks (
  id bigint generated always as identity primary key,
  user_id text not null check (char_length(user_id) between 1 and 255),
  title text not null check (char_length(title) between 1 and 200 and title ~ '\S'),
  description text check (char_length(description) <= 1000),
  completed boolean not null default false,
  -- Millisecond precision, so a timestamp survives the round trip through JSON and a cursor unchanged.
  created_at timestamptz(3) not null default clock_timestamp(),
  updated_at timestamptz(3) not null default clock_timestamp()
);

-- One index per sort key, for all tasks and per completion status; each leads with
-- user_id, so no list ever reads another user's rows, and ends with id, the tie-breaker.
create index tasks_user_created on tasks (user_id, created_at, id);
create index tasks_user_updated on tasks (user_id, updated_at, id);
create index tasks_user_title on tasks (user_id, lower(title), id);
create index tasks_user_status_created on tasks (user_id, completed, created_at, id);
create index tasks_user_status_updated on tasks (user_id, completed, updated_at, id);
create index tasks_user_status_title on tasks (user_id, completed, lower(title), id);
