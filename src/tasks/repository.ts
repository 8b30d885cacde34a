import type postgres from 'postgres'
import type { components, operations } from '../../generated/api.js'
import type { Sql } from '../db.js'

export type Task = components['schemas']['Task']
export type TaskFields = components['schemas']['TaskPatch']
type ListQuery = Required<NonNullable<operations['listMyTasks']['parameters']['query']>>

/** What selects a user's tasks: the list's filters (also for counts and bulk changes). */
export interface Filters {
  status?: ListQuery['status']
  q?: string
  priority?: ListQuery['priority']
  tag?: ListQuery['tag']
  due_before?: string
  due_after?: string
}

export interface ListOptions extends Filters, Pick<ListQuery, 'sort' | 'order' | 'limit'> {
  status: ListQuery['status']
  /** Keyset position: the sort value and id of the last task already seen. */
  after?: Position
}

export interface Position {
  /** A timestamp (ISO), `infinity`/`-infinity` (sort=due_date, no due date), lower-cased title or urgency (1–4). */
  value: string | number
  id: number
}

// Every statement below is scoped by user_id; a task of another user is indistinguishable from none.
// Columns are named, never `*`, so a column added later cannot leak into responses.
const columns = [
  'id',
  'user_id',
  'title',
  'description',
  'completed',
  'priority',
  'tags',
  'due_date',
  'recurrence',
  'remind_at',
  'created_at',
  'updated_at',
] satisfies (keyof Task)[]

type Row = Task & { sort_value: string | number }

// A fragment is a Query, a Promise subclass, which V8 creates slowly (microseconds each): a list used
// to make fourteen per request. The fragments that hold no input are made once per pool and reused;
// postgres.js only reads a fragment's text and values when it writes a statement, it never runs one.
const fixedFragments = new WeakMap<Sql, Map<string, postgres.Fragment>>()
function fixed(sql: Sql, key: string, make: () => postgres.Fragment): postgres.Fragment {
  let fragments = fixedFragments.get(sql)
  if (fragments === undefined) {
    fragments = new Map()
    fixedFragments.set(sql, fragments)
  }
  let fragment = fragments.get(key)
  if (fragment === undefined) {
    fragment = make()
    fragments.set(key, fragment)
  }
  return fragment
}
const nothing = (sql: Sql) => fixed(sql, '', () => sql``)
// `columns` as literal SQL, for every statement that returns tasks unqualified: postgres.js quotes each
// name of sql(columns) again for every query (a dozen strings, ~2 KiB of garbage and microseconds each time).
const columnList = (sql: Sql) =>
  fixed(sql, 'columns', () => {
    const list = sql`id, user_id, title, description, completed, priority, tags, due_date, recurrence, remind_at, created_at, updated_at`
    if ((list as unknown as { strings: string[] }).strings.join() !== columns.join(', ')) throw new Error('columnList is not columns')
    return list
  })

// Each sort key is the expression its indexes hold (migrations 00001 and 00005). Tasks without a due
// date come last in both orders: their key is the greatest value ascending, the least descending.
function sortKey(sql: Sql, sort: ListOptions['sort'], order: ListOptions['order']) {
  return fixed(sql, `key ${sort} ${order}`, () => {
    switch (sort) {
      case 'title':
        return sql`lower(title)`
      case 'due_date':
        return order === 'asc' ? sql`coalesce(due_date, 'infinity')` : sql`coalesce(due_date, '-infinity')`
      case 'priority':
        return sql`priority_rank`
      default:
        return sql`${sql(sort)}`
    }
  })
}

/** The conditions of the list's filters beyond the user, each served by an index or checked on the rows an index found. */
export function filtersOf(sql: Sql, user_id: string, f: Filters, dueOrder: ListOptions['order'] = 'asc') {
  const status =
    f.status === undefined || f.status === 'all'
      ? nothing(sql)
      : fixed(sql, `status ${f.status}`, () => sql`and completed = ${f.status === 'completed'}`)
  // On the columns the indexes hold: the urgency, and the due date as each due-date sort key has it
  // (a task without one is never before nor after anything).
  const priority = f.priority?.length ? sql`and priority_rank = any(${f.priority.map((p) => urgency[p])}::int2[])` : nothing(sql)
  const tags = f.tag?.length ? sql`and tag_keys @> ${tagKeys(user_id, f.tag)}::text[]` : nothing(sql)
  if (f.due_before === undefined && f.due_after === undefined) {
    return f.priority?.length || f.tag?.length ? sql`${status} ${priority} ${tags}` : status
  }
  // The due window is a range of the key the list is sorted by (sort=due_date), whose infinity stands
  // for "no due date" and is left out of the range; due dates themselves are finite (years 1–9999).
  const due = sortKey(sql, 'due_date', dueOrder)
  const none = dueOrder === 'asc' ? sql`'infinity'` : sql`'-infinity'`
  const window = sql`and ${due} <> ${none}::timestamptz
        ${f.due_before === undefined ? nothing(sql) : sql`and ${due} < ${f.due_before}::timestamptz`}
        ${f.due_after === undefined ? nothing(sql) : sql`and ${due} >= ${f.due_after}::timestamptz`}`
  return sql`${status} ${priority} ${tags} ${window}`
}

/** priority_rank of each priority (migration 00005). */
const urgency = { low: 1, medium: 2, high: 3, urgent: 4 } as const

/** Tags as the filter compares them: the user's, trimmed and lower-cased (migration 00005). */
export const tagKeys = (user_id: string, tags: readonly string[]) => tags.map((t) => `${user_id}\x1f${t.trim().toLowerCase()}`)

export async function listTasks(sql: Sql, user_id: string, o: ListOptions): Promise<{ tasks: Task[]; next?: Position }> {
  const key = sortKey(sql, o.sort, o.order)
  const direction = fixed(sql, o.order, () => (o.order === 'asc' ? sql`asc` : sql`desc`))
  const cast = o.sort === 'due_date' ? sql`::timestamptz` : nothing(sql)
  const after = !o.after
    ? nothing(sql)
    : o.order === 'asc'
      ? sql`and (${key}, id) > (${o.after.value}${cast}, ${o.after.id})`
      : sql`and (${key}, id) < (${o.after.value}${cast}, ${o.after.id})`
  const page: Page = {
    select: fixed(sql, `select ${o.sort} ${o.order}`, () => sql`select ${columnList(sql)}, ${key} as sort_value from tasks`),
    list: sql`user_id = ${user_id} ${filtersOf(sql, user_id, o, o.sort === 'due_date' ? o.order : 'asc')} ${after}`,
    // With a status, `completed` is one value: ordering by it too changes nothing but tells the
    // planner that the status index (user_id, completed, key, id) gives the order as it is.
    order: fixed(sql, `order ${o.sort} ${o.order} ${o.status === 'all'}`, () =>
      o.status === 'all'
        ? sql`order by ${key} ${direction}, id ${direction}`
        : sql`order by completed ${direction}, ${key} ${direction}, id ${direction}`,
    ),
    direction,
    limit: o.limit + 1,
  }
  const query = (sql: Sql) =>
    o.q === undefined ? sql<Row[]>`${page.select} where ${page.list} ${page.order} limit ${page.limit}` : search(sql, page, o.q)
  // How many of a user's tasks carry a tag decides the plan: a rare tag is found through tasks_tags,
  // a common one by reading the list in order. A prepared statement's generic plan cannot know which,
  // so a tag-filtered list is planned for its own tags every time.
  const rows = await (o.tag?.length
    ? sql.begin(async (tx) => {
        await tx`set local plan_cache_mode = force_custom_plan`
        return query(tx as unknown as Sql)
      })
    : query(sql))
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
  const matches = sql`(strpos(lower(title), lower(${q})) > 0 or strpos(lower(description), lower(${q})) > 0)`
  return sql<Row[]>`
    with head as (
      select title, description from tasks where ${list} ${order} limit ${probe}
    ), choice as (
      select ${q} !~ '[[:alnum:]]{3}'
          or (select count(*) from (select from head where ${matches} limit 2) as hits) = 2
          or (select count(*) from head) < ${probe} as in_order
    ), found as materialized (
      ${select} where ${list} ${matching(sql, q)}
    )
    (${select} where ${list} and ${matches} and (select in_order from choice) ${order} limit ${limit})
    union all
    (select ${columnList(sql)}, sort_value from found where not (select in_order from choice)
     order by sort_value ${direction}, id ${direction} limit ${limit})
    order by sort_value ${direction}, id ${direction}
  `
}

export async function createTask(sql: Sql, user_id: string, fields: components['schemas']['TaskCreate']): Promise<Task> {
  const tags = fields.tags ?? []
  const due = fields.due_date ?? null
  const [task] = await sql<Task[]>`
    insert into tasks (user_id, title, description, completed, priority, tags, tag_keys, due_date, recurrence, remind_at, recurrence_start)
    values (${user_id}, ${fields.title}, ${fields.description ?? null}, ${fields.completed ?? false}, ${fields.priority ?? 'medium'},
      ${tags}::text[], ${tagKeys(user_id, tags)}::text[], ${due}::timestamptz, ${fields.recurrence ?? null}, ${fields.remind_at ?? null}::timestamptz,
      ${due}::timestamptz)
    returning ${columnList(sql)}
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
  const [task] = await sql<Task[]>`select ${columnList(sql)} from tasks where user_id = ${user_id} and id = ${id}`
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

/** A written task, with the next occurrence its completion created (a recurring task). */
export type Written = Task & { next_occurrence?: Task }

/** Sets the given fields; omitted ones keep their value. updated_at strictly increases on every change. */
export async function updateTask(
  sql: Sql,
  user_id: string,
  id: number,
  changes: TaskFields,
  versions?: Versions,
): Promise<Written | undefined> {
  const [task] = await write(sql, user_id, sql`id = ${id} ${ofVersion(sql, versions)}`, changes)
  return task
}

/** Sets `completed`, or flips it when no value is given. */
export async function completeTask(
  sql: Sql,
  user_id: string,
  id: number,
  completed?: boolean,
  versions?: Versions,
): Promise<Written | undefined> {
  const [task] = await write(sql, user_id, sql`id = ${id} ${ofVersion(sql, versions)}`, {}, completed ?? 'toggle')
  return task
}

/** Sets `completed` on every task of the user that the filters select; how many changed. */
export async function completeTasks(sql: Sql, user_id: string, filters: Filters, completed: boolean): Promise<number> {
  // Only the tasks that change: one already as asked keeps its updated_at (and ETag) and is not counted.
  const selected = sql`completed <> ${completed} ${selection(sql, user_id, filters)}`
  const tasks = await write(sql, user_id, selected, {}, completed)
  return tasks.length
}

/** Deletes every task of the user that the filters select; how many. */
export async function deleteTasks(sql: Sql, user_id: string, filters: Filters): Promise<number> {
  const { count } = await sql`delete from tasks where user_id = ${user_id} ${selection(sql, user_id, filters)}`
  return count
}

/** How many of the user's tasks the filters select: in all, pending, completed, and pending past their due date. */
export type Counts = components['schemas']['TaskCounts']

export async function countTasks(sql: Sql, user_id: string, filters: Filters): Promise<Counts> {
  const [counts] = await sql<Counts[]>`
    select count(*)::int as all,
      count(*) filter (where not completed)::int as pending,
      count(*) filter (where completed)::int as completed,
      count(*) filter (where not completed and due_date < now())::int as overdue
    from tasks where user_id = ${user_id} ${selection(sql, user_id, filters)}
  `
  return counts as Counts
}

// Counts and bulk changes select what the list would show: its filters and `q`.
const selection = (sql: Sql, user_id: string, f: Filters) => sql`${filtersOf(sql, user_id, f)} ${matching(sql, f.q)}`

// The condition of `q` as ILIKE (the pattern's % and _ escaped): the trigram index
// (tasks_user_search, title and description as one text) narrows, then each column decides.
function matching(sql: Sql, q: string | undefined) {
  if (q === undefined) return sql``
  const pattern = `%${q.replace(/[\\%_]/g, '\\$&')}%`
  return sql`and (title || ' ' || coalesce(description, '')) ilike ${pattern} and (title ilike ${pattern} or description ilike ${pattern})`
}

/**
 * One statement that writes the user's tasks selected by `where` (locking them first) and, for each
 * recurring task it makes completed that has not rolled over yet, creates the next occurrence and
 * links it (`next_id`), so that completing it again later creates nothing. `completed`: the value to
 * set, `toggle`, or undefined to keep it (then `changes.completed` decides, as PATCH and PUT send it).
 * Setting the due date or the recurrence starts the series again from that due date.
 */
async function write(
  sql: Sql,
  user_id: string,
  where: postgres.Fragment,
  changes: TaskFields,
  completed?: boolean | 'toggle',
): Promise<Written[]> {
  const given = <K extends keyof TaskFields>(key: K) => changes[key] !== undefined
  const value = completed ?? changes.completed
  const completedAfter = value === 'toggle' ? sql`not t.completed` : value === undefined ? sql`t.completed` : sql`${value}`
  const recurrenceAfter = given('recurrence') ? sql`${changes.recurrence ?? null}::text` : sql`t.recurrence`
  const dueAfter = given('due_date') ? sql`${changes.due_date ?? null}::timestamptz` : sql`t.due_date`
  const set = [
    sql`completed = ${completedAfter}`,
    ...(given('title') ? [sql`title = ${changes.title as string}`] : []),
    ...(given('description') ? [sql`description = ${changes.description ?? null}`] : []),
    ...(given('priority') ? [sql`priority = ${changes.priority as string}`] : []),
    ...(given('tags')
      ? [sql`tags = ${changes.tags as string[]}::text[], tag_keys = ${tagKeys(user_id, changes.tags as string[])}::text[]`]
      : []),
    ...(given('due_date') ? [sql`due_date = ${dueAfter}`] : []),
    ...(given('recurrence') ? [sql`recurrence = ${recurrenceAfter}`] : []),
    ...(given('remind_at') ? [sql`remind_at = ${changes.remind_at ?? null}::timestamptz`] : []),
    ...(given('due_date') || given('recurrence') ? [sql`recurrence_start = ${dueAfter}, recurrence_index = 0`] : []),
  ]
  // In UTC: a day is 24 hours, and a month keeps the time of day and (clamped) the day of month of the first due date.
  const next = sql`(w.recurrence_start at time zone 'UTC' + (w.recurrence_index + 1) *
    case w.recurrence when 'daily' then interval '1 day' when 'weekly' then interval '7 days' else interval '1 month' end
  ) at time zone 'UTC'`
  const rows = await sql<(Task & { next?: Task | null })[]>`
    with target as (
      select id, next_id from tasks where user_id = ${user_id} and ${where} order by id for update
    ), written as (
      update tasks t set ${set.flatMap((f, i) => (i === 0 ? [f] : [sql`, `, f]))}, ${touch(sql, 't')},
        next_id = case when ${completedAfter} and ${recurrenceAfter} is not null and t.next_id is null
          then nextval(pg_get_serial_sequence('tasks', 'id')) else t.next_id end
      from target where t.id = target.id and t.user_id = ${user_id}
      returning t.*, target.next_id as previous_next_id
    ), successors as (
      insert into tasks (id, user_id, title, description, priority, tags, tag_keys, due_date, recurrence, remind_at,
        recurrence_start, recurrence_index)
      overriding system value
      select w.next_id, w.user_id, w.title, w.description, w.priority, w.tags, w.tag_keys, ${next}, w.recurrence,
        w.remind_at + (${next} - w.due_date), w.recurrence_start, w.recurrence_index + 1
      from written w where w.next_id is not null and w.previous_next_id is null
      returning ${columnList(sql)}
    )
    select ${sql(columns.map((c) => `w.${c}`))}, to_jsonb(s) as next
    from written w left join successors s on s.id = w.next_id
    order by w.id
  `
  return rows.map(({ next, ...task }) => (next ? { ...task, next_occurrence: asTask(next) } : task))
}

/** A task read back through to_jsonb (a successor, an event): its fields, timestamps as the API writes them. */
export function asTask(row: Task): Task {
  const iso = (v: string | null) => (v === null ? null : new Date(v).toISOString())
  return {
    id: row.id,
    user_id: row.user_id,
    title: row.title,
    description: row.description,
    completed: row.completed,
    priority: row.priority,
    tags: row.tags,
    due_date: iso(row.due_date),
    recurrence: row.recurrence,
    remind_at: iso(row.remind_at),
    created_at: iso(row.created_at) as string,
    updated_at: iso(row.updated_at) as string,
  }
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
const touch = (sql: Sql, table: string) =>
  sql`updated_at = greatest(clock_timestamp(), ${sql(table)}.updated_at + interval '1 millisecond')`
