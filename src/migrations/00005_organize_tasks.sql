-- Organizing tasks (SPEC "Organizing tasks"): priority, tags, due date, recurrence and reminder.
-- Existing tasks keep their ids and data and get priority 'medium', no tags and nulls.
alter table tasks
  add column priority text not null default 'medium' check (priority in ('low', 'medium', 'high', 'urgent')),
  -- Urgency as a number, so that sort=priority is an index order (urgent > high > medium > low).
  add column priority_rank smallint generated always as (
    case priority when 'low' then 1 when 'medium' then 2 when 'high' then 3 else 4 end
  ) stored,
  -- As given (trimmed), in order. tag_keys holds each as `<user_id>\x1f<tag lower-cased>`, written
  -- with them by the API, for the case-insensitive tag filter: a key names one user's tag, so the
  -- filter is one lookup in tasks_tags that finds only that user's tasks (user ids hold no control
  -- characters), and the planner's statistics count a tag per user.
  add column tags text[] not null default '{}' check (cardinality(tags) <= 20),
  add column tag_keys text[] not null default '{}',
  add column due_date timestamptz(3),
  add column recurrence text check (recurrence in ('daily', 'weekly', 'monthly')),
  add column remind_at timestamptz(3),
  -- A recurring task's occurrences are counted from the due date of the first one, so that a
  -- monthly task keeps its day of month (Jan 31 → Feb 29 → Mar 31): the next is
  -- recurrence_start + (recurrence_index + 1) periods. Both restart whenever the due date or the
  -- recurrence is set.
  add column recurrence_start timestamptz(3),
  add column recurrence_index integer not null default 0,
  -- The occurrence created when this one was completed: set once, so a task rolls over once.
  add column next_id bigint,
  add constraint tasks_recurrence_needs_due_date check (recurrence is null or due_date is not null);

-- Sorting by due date puts tasks without one last in both orders: each order sorts a key that
-- makes a missing date the greatest (asc) or the least (desc) value, each served by its index,
-- for all tasks and per completion status, like the other sort keys.
create index tasks_user_due_asc on tasks (user_id, (coalesce(due_date, 'infinity')), id);
create index tasks_user_due_desc on tasks (user_id, (coalesce(due_date, '-infinity')), id);
create index tasks_user_status_due_asc on tasks (user_id, completed, (coalesce(due_date, 'infinity')), id);
create index tasks_user_status_due_desc on tasks (user_id, completed, (coalesce(due_date, '-infinity')), id);
create index tasks_user_priority on tasks (user_id, priority_rank, id);
create index tasks_user_status_priority on tasks (user_id, completed, priority_rank, id);
-- Tag filters (every given tag on the task): the user's tag keys.
create index tasks_tags on tasks using gin (tag_keys);
