-- Live updates (SPEC "Live updates"): every change to a task is written to an outbox, in the
-- transaction that makes it, by triggers, so no write path can forget one. Once it has committed,
-- the API process that made it sends a NOTIFY naming the user (src/events/hub.ts: not from the
-- transaction itself, because PostgreSQL serializes the commits of every transaction that notifies);
-- each API process listens on one connection and sends the user's new events to the streams it
-- holds. Events are kept an hour, for clients that reconnect with Last-Event-ID.
create sequence task_events_id_seq as bigint;

create table task_events (
  user_id text not null,
  -- From task_events_id_seq, taken under the user's lock (task_events_order): one user's events are
  -- numbered in the order their transactions commit, so "every event after N" misses none.
  id bigint not null,
  type text not null check (type in ('task.created', 'task.updated', 'task.deleted', 'reminder')),
  task_id bigint not null,
  -- The task as the change left it, as to_jsonb writes the row (the API picks its fields); none when deleted.
  task jsonb,
  created_at timestamptz not null default now(),
  primary key (user_id, id)
);

-- Pruning reads events by age; they arrive in time order, which a BRIN index keeps for almost nothing.
create index task_events_created on task_events using brin (created_at);

-- Per user, the greatest id pruning deleted: a client whose Last-Event-ID is older may have missed
-- events, and must reload.
create table task_event_horizons (
  user_id text primary key,
  pruned_through bigint not null
);

-- Ids are assigned here rather than by a column default (defaults are computed before BEFORE
-- triggers run): after the user's transaction-level lock, which is held until commit, so a
-- concurrent transaction of the same user takes its ids only once this one's are visible.
create function task_events_order() returns trigger language plpgsql as $$
begin
  perform pg_advisory_xact_lock(1952804453, hashtext(new.user_id));
  new.id := nextval('task_events_id_seq');
  return new;
end $$;

create trigger task_events_order before insert on task_events
  for each row execute function task_events_order();

-- Every statement that writes tasks adds its events, in id order. An update that leaves
-- updated_at as it was (a reminder being claimed) changes nothing a client sees: no event.
create function tasks_changed() returns trigger language plpgsql as $$
begin
  if tg_op = 'INSERT' then
    insert into task_events (user_id, type, task_id, task)
    select user_id, 'task.created', id, to_jsonb(n) from new_rows n order by id;
  elsif tg_op = 'UPDATE' then
    insert into task_events (user_id, type, task_id, task)
    select n.user_id, 'task.updated', n.id, to_jsonb(n)
    from new_rows n join old_rows o on o.id = n.id
    where n.updated_at is distinct from o.updated_at
    order by n.id;
  else
    insert into task_events (user_id, type, task_id)
    select user_id, 'task.deleted', id from old_rows order by id;
  end if;
  return null;
end $$;

create trigger tasks_created after insert on tasks
  referencing new table as new_rows for each statement execute function tasks_changed();
create trigger tasks_updated after update on tasks
  referencing old table as old_rows new table as new_rows for each statement execute function tasks_changed();
create trigger tasks_deleted after delete on tasks
  referencing old table as old_rows for each statement execute function tasks_changed();

-- Reminders: the remind_at a reminder was last delivered for. A task is due for one when remind_at
-- has come and differs from it, so setting a new remind_at brings a new reminder, and each due time
-- is delivered once. Completed tasks remind no one. The partial index holds only pending reminders.
alter table tasks add column reminded_at timestamptz(3);
create index tasks_reminders_pending on tasks (remind_at)
  where remind_at is not null and not completed and reminded_at is distinct from remind_at;
