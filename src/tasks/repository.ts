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

export async function listTasks(sql: Sql, user_id: string, o: ListOptions): Promise<{ tasks: Task[]; next?: Position }> {
  const key = o.sort === 'title' ? sql`lower(title)` : sql(o.sort)
  const direction = o.order === 'asc' ? sql`asc` : sql`desc`
  const status = o.status === 'all' ? sql`` : sql`and completed = ${o.status === 'completed'}`
  const pattern = o.q && `%${o.q.replace(/[\\%_]/g, '\\$&')}%`
  const search = pattern ? sql`and (title ilike ${pattern} or description ilike ${pattern})` : sql``
  const after = !o.after
    ? sql``
    : o.order === 'asc'
      ? sql`and (${key}, id) > (${o.after.value}, ${o.after.id})`
      : sql`and (${key}, id) < (${o.after.value}, ${o.after.id})`
  const rows = await sql<(Task & { sort_value: string })[]>`
    select ${sql(columns)}, ${key} as sort_value from tasks
    where user_id = ${user_id} ${status} ${search} ${after}
    order by ${key} ${direction}, id ${direction}
    limit ${o.limit + 1}
  `
  const tasks = rows.slice(0, o.limit).map(({ sort_value, ...task }) => task)
  const last = rows.length > o.limit ? rows[o.limit - 1] : undefined
  return { tasks, ...(last && { next: { value: last.sort_value, id: last.id } }) }
}

export async function createTask(sql: Sql, user_id: string, fields: components['schemas']['TaskCreate']): Promise<Task> {
  const [task] = await sql<Task[]>`
    insert into tasks (user_id, title, description, completed)
    values (${user_id}, ${fields.title}, ${fields.description ?? null}, ${fields.completed ?? false})
    returning ${sql(columns)}
  `
  return task as Task
}

export async function getTask(sql: Sql, user_id: string, id: number): Promise<Task | undefined> {
  const [task] = await sql<Task[]>`select ${sql(columns)} from tasks where user_id = ${user_id} and id = ${id}`
  return task
}

/** Sets the given fields; omitted ones keep their value. updated_at strictly increases on every change. */
export async function updateTask(sql: Sql, user_id: string, id: number, changes: TaskChanges): Promise<Task | undefined> {
  const keys = (['title', 'description', 'completed'] as const).filter((c) => changes[c] !== undefined)
  const [task] = await sql<Task[]>`
    update tasks set ${sql(changes, keys)}, ${touch(sql)}
    where user_id = ${user_id} and id = ${id}
    returning ${sql(columns)}
  `
  return task
}

/** Sets `completed`, or flips it when no value is given. */
export async function completeTask(sql: Sql, user_id: string, id: number, completed?: boolean): Promise<Task | undefined> {
  const value = completed === undefined ? sql`not completed` : sql`${completed}`
  const [task] = await sql<Task[]>`
    update tasks set completed = ${value}, ${touch(sql)}
    where user_id = ${user_id} and id = ${id}
    returning ${sql(columns)}
  `
  return task
}

export async function deleteTask(sql: Sql, user_id: string, id: number): Promise<boolean> {
  const { count } = await sql`delete from tasks where user_id = ${user_id} and id = ${id}`
  return count === 1
}

// Millisecond timestamps could repeat within one millisecond; never let updated_at stand still.
const touch = (sql: Sql) => sql`updated_at = greatest(clock_timestamp(), updated_at + interval '1 millisecond')`
