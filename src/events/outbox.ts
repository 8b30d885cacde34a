import type { components } from '../../generated/api.js'
import type { Sql } from '../db.js'
import { asTask, type Task } from '../tasks/repository.js'

// The outbox of task events (migration 00006): triggers write it with every change to a task,
// in the transaction that makes the change; these statements read it, prune it and add reminders.

export type EventType = 'task.created' | 'task.updated' | 'task.deleted' | 'reminder'

/** An event as a stream sends it: its id, its type and its data (the task, or the id of a deleted one). */
export interface TaskEvent {
  id: number
  type: EventType
  data: Task | components['schemas']['DeletedTask']
}

/** The channel API processes notify on once a change has committed, with the user's id as the payload. */
export const channel = 'task_events'

/** How long events are kept for clients that reconnect with Last-Event-ID. */
const lifetime = '1 hour'

/** The user's events after `after`, oldest first, at most `limit`. */
export async function eventsAfter(sql: Sql, user_id: string, after: number, limit: number): Promise<TaskEvent[]> {
  const rows = await sql<{ id: number; type: EventType; task_id: number; task: Task | null }[]>`
    select id, type, task_id, task from task_events
    where user_id = ${user_id} and id > ${after}
    order by id limit ${limit}
  `
  return rows.map(({ id, type, task_id, task }) => ({ id, type, data: task ? asTask(task) : { id: task_id } }))
}

/**
 * Tells every API process that these users have new events. Its own transaction, committed without
 * waiting for the disk: PostgreSQL serializes the commits of notifying transactions, which must not
 * hold up the writes (whose events are already durable in the outbox); a notification lost in a crash
 * only delays events until the next sweep.
 */
export async function notifyUsers(sql: Sql, users: readonly string[]): Promise<void> {
  await sql`
    select pg_notify(${channel}, user_id) from unnest(${users as string[]}::text[]) as user_id,
      set_config('synchronous_commit', 'off', true)
  `
}

/** The latest event id of each of these users that has any. */
export async function latestEvents(sql: Sql, users: readonly string[]): Promise<Map<string, number>> {
  const rows = await sql<{ user_id: string; latest: number }[]>`
    select user_id, max(id) as latest from task_events where user_id = any(${users as string[]}::text[]) group by user_id
  `
  return new Map(rows.map((r) => [r.user_id, r.latest]))
}

/**
 * Where a stream starts: after the user's latest event, and whether events after `lastEventId`
 * may be missing (pruned already, or never known here): the client must then reload what it shows.
 */
export async function startOf(sql: Sql, user_id: string, lastEventId: number | undefined): Promise<{ latest: number; pruned: boolean }> {
  const [row] = await sql<{ latest: number; pruned_through: number }[]>`
    select coalesce((select pruned_through from task_event_horizons where user_id = ${user_id}), 0) as pruned_through,
      coalesce((select max(id) from task_events where user_id = ${user_id}), 0) as latest
  `
  const { latest, pruned_through } = row as { latest: number; pruned_through: number }
  const newest = Math.max(latest, pruned_through)
  // An id newer than any of the user's (a database restored from a backup) is as unusable as a pruned one.
  return { latest: newest, pruned: lastEventId !== undefined && (lastEventId < pruned_through || lastEventId > newest) }
}

/** Deletes the events older than their lifetime, remembering for each user the greatest id it deleted. */
export async function pruneEvents(sql: Sql): Promise<number> {
  const [row] = await sql<{ count: number }[]>`
    with gone as (
      delete from task_events where created_at < now() - ${lifetime}::interval returning user_id, id
    ), horizons as (
      insert into task_event_horizons (user_id, pruned_through)
      select user_id, max(id) from gone group by user_id
      on conflict (user_id) do update set pruned_through = greatest(task_event_horizons.pruned_through, excluded.pruned_through)
    )
    select count(*)::int as count from gone
  `
  return row?.count ?? 0
}

/**
 * Claims up to `limit` due reminders and adds their events, in one statement: a task whose
 * remind_at has come, that is not completed and was not reminded of this remind_at yet. Rows another
 * process is claiming are skipped, not waited for, so each reminder is delivered by one process once.
 * Setting reminded_at leaves updated_at alone, so the claim itself is no task.updated event.
 */
export async function claimReminders(sql: Sql, limit: number): Promise<{ count: number; users: string[] }> {
  const [row] = await sql<{ count: number; users: string[] }[]>`
    with due as (
      select id from tasks
      where remind_at <= now() and remind_at is not null and not completed and reminded_at is distinct from remind_at
      order by remind_at limit ${limit}
      for update skip locked
    ), claimed as (
      update tasks t set reminded_at = t.remind_at from due where t.id = due.id returning t.*
    ), added as (
      insert into task_events (user_id, type, task_id, task)
      select user_id, 'reminder', id, to_jsonb(c) from claimed c order by user_id, id
      returning user_id
    )
    select count(*)::int as count, coalesce(array_agg(distinct user_id), '{}') as users from added
  `
  return row ?? { count: 0, users: [] }
}
