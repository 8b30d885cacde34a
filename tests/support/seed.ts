// Tasks inserted straight into PostgreSQL with explicit timestamps (to create ties), and the
// order the contract prescribes for them, computed independently of the server's SQL.
import type { Sql } from '../../src/db.js'

export type Sort = 'created_at' | 'updated_at' | 'title'
export type Order = 'asc' | 'desc'

export interface Row {
  id: number
  title: string
  description: string | null
  completed: boolean
  /** Written as a Date, read back as the ISO string the API returns. */
  created_at: Date | string
  updated_at: Date | string
}

export type NewRow = Omit<Row, 'id'>

/** Timestamps in the past (a task created through the API is always newer), n milliseconds apart. */
export const at = (n: number) => new Date(Date.UTC(2021, 0, 1) + n)

/** Inserts the user's tasks in one statement. */
export function insertTasks(sql: Sql, user_id: string, rows: NewRow[]): Promise<Row[]> {
  return sql<Row[]>`
    insert into tasks ${sql(rows.map((row) => ({ user_id, ...row })))}
    returning id, title, description, completed, created_at, updated_at
  `
}

/** The ids in the order the contract prescribes: by the key (title case-insensitively), then by id, both in the given direction. */
export function expectedOrder(rows: Row[], sort: Sort, order: Order): number[] {
  const key = (r: Row) => (sort === 'title' ? r.title.toLowerCase() : new Date(r[sort]).getTime())
  const sign = order === 'asc' ? 1 : -1
  return [...rows]
    .sort((a, b) => {
      const [ka, kb] = [key(a), key(b)]
      return sign * (ka < kb ? -1 : ka > kb ? 1 : a.id - b.id)
    })
    .map((r) => r.id)
}
