import type postgres from 'postgres'
import type { components, operations } from '../../generated/api.js'
import type { Sql } from '../db.js'

export type Task = components['schemas']['Task']
export type TaskChanges = components['schemas']['TaskPatch']
type ListQuery = Required<NonNullable<operations['listMyTasks']['parameters']['query']>>

export interface ListOptions extends Pick<ListQuery, 'status' | 'sort' | 'order' | 'limit'> {
  q?: string
  /** Keyset position: the sort value and id of the last task already seen. */
  after?: Position
}

export interface Position {
  value: string
  id: number
}

// Every statement below is scoped by user_id; a task of another user is indistinguishable from none.
// Columns are named, never `*`, so a column added later cannot leak into responses.
const columns = ['id', 'user_id', 'title', 'description', 'completed', 'created_at', 'updated_at'] satisfies (keyof Task)[]

type Row = Task & { sort_value: string }

export async function listTasks(sql: Sql, user_id: string, o: ListOptions): Promise<{ tasks: Task[]; next?: Position }> {
  const key = o.sort === 'title' ? sql`lower(title)` : sql(o.sort)
  const direction = o.order === 'asc' ? sql`asc` : sql`desc`
  const status = o.status === 'all' ? sql`` : sql`and completed = ${o.status === 'completed'}`
  const after = !o.after
    ? sql``
    : o.order === 'asc'
      ? sql`and (${key}, id) > (${o.after.value}, ${o.after.id})`
      : sql`and (${key}, id) < (${o.after.value}, ${o.after.id})`
  const page: Page = {
    select: sql`select ${sql(columns)}, ${key} as sort_value from tasks`,
    list: sql`user_id = ${user_id} ${status} ${after}`,
    order: sql`order by ${key} ${direction}, id ${direction}`,
    direction,
    limit: o.limit + 1,
  }
  const rows = await (o.q === undefined
    ? sql<Row[]>`${page.select} where ${page.list} ${page.order} limit ${page.limit}`
    : search(sql, page, o.q))
  const tasks = rows.slice(0, o.limit).map(({ sort_value, ...task }) => task)
  const last = rows.length > o.limit ? rows[o.limit - 1] : undefined
  return { tasks, ...(last && { next: { value: last.sort_value, id: last.id } }) }
}

interface Page {
  select: postgres.Fragment
  /** The user's tasks in this list: status and cursor position. */
  list: postgres.Fragment
  order: postgres.Fragment
  direction: postgres.Fragment
  limit: number
}

// How many of the user's next tasks, in list order, a search reads to judge its term.
const probe = 200

/**
 * A search has two good plans, and the term decides which: a common one fills a page from the
 * first tasks read in list order (an ordered index scan that stops early), a rare one is found
 * through the trigram index (tasks_user_search) without reading the list. A prepared statement's
 * generic plan cannot tell them apart, and a custom plan's guess comes from all users' text, so the
 * statement decides as it runs, from the user's own tasks: it reads the list in order when the next
 * `probe` tasks hold two matches or are all there is (a short list is read faster than the index is
 * searched), or when the term has no trigram (no three letters or digits in a row); otherwise it
 * collects the matches through the index and sorts them.
 *
 * The in-order branch matches with strpos, which no index serves, so that its plan stays an ordered
 * scan whatever is guessed about the term; it means the same as ILIKE, which lower-cases both sides
 * (the pattern's % and _ are escaped). The index holds title and description as one text: it narrows
 * the rows, then each column is checked. The probe's size is a parameter, not a literal, because a
 * generic plan expects a user to own the average number of tasks, and would rather sort a whole long
 * list than read 200 of its entries in order.
 */
function search(sql: Sql, { select, list, order, direction, limit }: Page, q: string) {
  const pattern = `%${q.replace(/[\\%_]/g, '\\$&')}%`
  const matches = sql`(strpos(lower(title), lower(${q})) > 0 or strpos(lower(description), lower(${q})) > 0)`
  return sql<Row[]>`
    with head as (
      select title, description from tasks where ${list} ${order} limit ${probe}
    ), choice as (
      select ${q} !~ '[[:alnum:]]{3}'
          or (select count(*) from (select from head where ${matches} limit 2) as hits) = 2
          or (select count(*) from head) < ${probe} as in_order
    ), found as materialized (
      ${select} where ${list} and (title || ' ' || coalesce(description, '')) ilike ${pattern}
        and (title ilike ${pattern} or description ilike ${pattern})
    )
    (${select} where ${list} and ${matches} and (select in_order from choice) ${order} limit ${limit})
    union all
    (select ${sql([...columns, 'sort_value'])} from found where not (select in_order from choice)
     order by sort_value ${direction}, id ${direction} limit ${limit})
    order by sort_value ${direction}, id ${direction}
  `
}

export async function createTask(sql: Sql, user_id: string, fields: components['schemas']['TaskCreate']): Promise<Task> {
  const [task] = await sql<Task[]>`
    insert into tasks (user_id, title, description, completed)
    values (${user_id}, ${fields.title}, ${fields.description ?? null}, ${fields.completed ?? false})
    returning ${sql(columns)}
  `
  return task as Task
}

/** What a create with an Idempotency-Key came to. */
export type KeyedCreate =
  | { outcome: 'created' | 'replayed'; id: number; body: string; location: string }
  | { outcome: 'reused' }
  | { outcome: 'in-use' }

// Keys are kept at least this long; an older one is forgotten, and a request may use it again.
const keyLifetime = '24 hours'

/**
 * Creates a task at most once per (user, Idempotency-Key): the first request stores the key with a
 * fingerprint of its body and the response it got, in the transaction that creates the task; a
 * retry with the same body gets that response again, one with another body is `reused`. A
 * transaction-level advisory lock on the key makes a duplicate that arrives while the first is still
 * running `in-use` at once, rather than waiting for it or creating a second task; it is taken
 * before the key is read, so a request that gets it sees whatever an earlier holder committed.
 */
export async function createTaskOnce(
  sql: Sql,
  user_id: string,
  key: string,
  fingerprint: string,
  fields: components['schemas']['TaskCreate'],
  locationOf: (id: number) => string,
): Promise<KeyedCreate> {
  return sql.begin(async (tx): Promise<KeyedCreate> => {
    const [lock] = await tx`select pg_try_advisory_xact_lock(hashtextextended(${`${user_id}\n${key}`}, 0)) as held`
    if (!lock?.held) return { outcome: 'in-use' }
    const [stored] = await tx<{ fingerprint: string; task_id: number; body: string; location: string }[]>`
      select fingerprint, task_id, body, location from idempotency_keys
      where user_id = ${user_id} and key = ${key} and created_at > now() - ${keyLifetime}::interval
    `
    if (stored) {
      if (stored.fingerprint !== fingerprint) return { outcome: 'reused' }
      return { outcome: 'replayed', id: stored.task_id, body: stored.body, location: stored.location }
    }
    const task = await createTask(tx as unknown as Sql, user_id, fields)
    const body = JSON.stringify(task)
    const location = locationOf(task.id)
    await tx`
      insert into idempotency_keys (user_id, key, fingerprint, task_id, body, location)
      values (${user_id}, ${key}, ${fingerprint}, ${task.id}, ${body}, ${location})
      on conflict (user_id, key) do update
        set fingerprint = excluded.fingerprint, task_id = excluded.task_id, body = excluded.body,
            location = excluded.location, created_at = excluded.created_at
    `
    return { outcome: 'created', id: task.id, body, location }
  })
}

/** Forgets the Idempotency-Keys older than their lifetime. */
export async function pruneIdempotencyKeys(sql: Sql): Promise<number> {
  const { count } = await sql`delete from idempotency_keys where created_at <= now() - ${keyLifetime}::interval`
  return count
}

export async function getTask(sql: Sql, user_id: string, id: number): Promise<Task | undefined> {
  const [task] = await sql<Task[]>`select ${sql(columns)} from tasks where user_id = ${user_id} and id = ${id}`
  return task
}

/**
 * Which versions of a task a write applies to: `undefined` for any (no If-Match), else the
 * `updated_at` instants it accepts (from the ETags in If-Match). The check and the write are one
 * statement: of concurrent writes naming the same version, the first to lock the row wins, and the
 * others, re-reading it (READ COMMITTED re-checks the WHERE clause on the row they waited for),
 * find a newer version and write nothing.
 */
export type Versions = readonly string[] | undefined

const ofVersion = (sql: Sql, versions: Versions) =>
  versions === undefined ? sql`` : sql`and updated_at = any(${versions as string[]}::timestamptz[])`

/** Sets the given fields; omitted ones keep their value. updated_at strictly increases on every change. */
export async function updateTask(
  sql: Sql,
  user_id: string,
  id: number,
  changes: TaskChanges,
  versions?: Versions,
): Promise<Task | undefined> {
  const keys = (['title', 'description', 'completed'] as const).filter((c) => changes[c] !== undefined)
  const [task] = await sql<Task[]>`
    update tasks set ${sql(changes, keys)}, ${touch(sql)}
    where user_id = ${user_id} and id = ${id} ${ofVersion(sql, versions)}
    returning ${sql(columns)}
  `
  return task
}

/** Sets `completed`, or flips it when no value is given. */
export async function completeTask(
  sql: Sql,
  user_id: string,
  id: number,
  completed?: boolean,
  versions?: Versions,
): Promise<Task | undefined> {
  const value = completed === undefined ? sql`not completed` : sql`${completed}`
  const [task] = await sql<Task[]>`
    update tasks set completed = ${value}, ${touch(sql)}
    where user_id = ${user_id} and id = ${id} ${ofVersion(sql, versions)}
    returning ${sql(columns)}
  `
  return task
}

export async function deleteTask(sql: Sql, user_id: string, id: number, versions?: Versions): Promise<boolean> {
  const { count } = await sql`delete from tasks where user_id = ${user_id} and id = ${id} ${ofVersion(sql, versions)}`
  return count === 1
}

export async function taskExists(sql: Sql, user_id: string, id: number): Promise<boolean> {
  const rows = await sql`select from tasks where user_id = ${user_id} and id = ${id}`
  return rows.length === 1
}

// Millisecond timestamps could repeat within one millisecond; never let updated_at stand still.
const touch = (sql: Sql) => sql`updated_at = greatest(clock_timestamp(), updated_at + interval '1 millisecond')`
