// Migrating forward (SPEC.md "Organizing tasks", issue 8): a database made by migrations 00001–00004,
// holding tasks, is brought up to date by the same migrate() the server runs at start-up, and every
// task keeps its id and data, with priority 'medium', no tags and nulls for the new fields; the API
// then serves those tasks like any other.
import { randomUUID } from 'node:crypto'
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import shift from 'postgres-shift'
import type { components } from '../generated/api.js'
import { connect, type Sql } from '../src/db.js'
import { migrate } from '../src/migrate.js'
import { projectRoot } from '../src/paths.js'
import { startServer, type TestServer, testDatabaseUrl, tokenFor } from './support/server.js'

type Task = components['schemas']['Task']

const schema = `migrate_${randomUUID().replace(/-/g, '')}`
const before = (file: string) => /^0000[1-4]_.*\.sql$/.test(file)
const user = `user-${randomUUID()}`
const other = `user-${randomUUID()}`

interface OldRow {
  id: number
  user_id: string
  title: string
  description: string | null
  completed: boolean
  created_at: string
  updated_at: string
}

let admin: Sql
let url: string
let old: OldRow[]

beforeAll(async () => {
  admin = connect(testDatabaseUrl(), { max: 1 })
  await admin`create schema ${admin(schema)}`
  const target = new URL(testDatabaseUrl())
  target.searchParams.set('search_path', schema)
  url = target.toString()

  // The schema as it was before issue 8: only the first four migrations, recorded as migrate() records them.
  const folder = mkdtempSync(join(tmpdir(), 'migrations-'))
  const files = readdirSync(join(projectRoot, 'src/migrations')).filter(before)
  expect(files).toHaveLength(4)
  for (const file of files) copyFileSync(join(projectRoot, 'src/migrations', file), join(folder, file))
  const sql = connect(url, { max: 1, prepare: false })
  try {
    await shift({ sql, path: folder })
    old = await sql<OldRow[]>`
      insert into tasks (user_id, title, description, completed, created_at, updated_at)
      select case when i % 3 = 0 then ${other} else ${user} end, 'old task ' || i,
             case when i % 2 = 0 then 'described ' || i end, i % 4 = 0,
             timestamptz '2024-02-29 12:00:00.123Z' + i * interval '1 hour',
             timestamptz '2024-03-01 08:00:00.456Z' + i * interval '90 minutes'
      from generate_series(1, 12) as i
      returning id, user_id, title, description, completed, created_at, updated_at
    `
    // Gaps in the ids, as deletes leave them.
    await sql`delete from tasks where id = ${old[4]?.id as number}`
    old.splice(4, 1)
    const columns = await sql`select column_name from information_schema.columns where table_schema = ${schema} and table_name = 'tasks'`
    expect(columns.map((c) => c.column_name)).not.toContain('priority')
  } finally {
    await sql.end()
    rmSync(folder, { recursive: true, force: true })
  }
  await migrate(url)
})

afterAll(async () => {
  if (admin) {
    await admin`drop schema ${admin(schema)} cascade`
    await admin.end()
  }
})

describe('migrating a database made before issue 8', () => {
  test('when migrate() runs, then it applies exactly the migrations after 00004, and a second run changes nothing', async () => {
    const applied = await admin<{ migration_id: number }[]>`select migration_id from ${admin(schema)}.migrations order by migration_id`
    const all = readdirSync(join(projectRoot, 'src/migrations')).filter((f) => /^\d{5}_/.test(f))
    expect(applied.map((m) => m.migration_id)).toEqual(all.map((_, i) => i + 1))
    await migrate(url)
    expect(await admin`select migration_id from ${admin(schema)}.migrations order by migration_id`).toHaveLength(all.length)
  })

  test('when migrated, then every task keeps its id, owner, text, completion and timestamps to the millisecond', async () => {
    const rows = await admin<OldRow[]>`
      select id, user_id, title, description, completed, created_at, updated_at from ${admin(schema)}.tasks order by id
    `
    expect(rows).toEqual(old)
    expect(rows).toHaveLength(11)
  })

  test("when migrated, then every task has priority 'medium', tags '{}' and null due date, recurrence and reminder", async () => {
    const rows = await admin`
      select priority, tags, tags = '{}' as no_tags, due_date, recurrence, remind_at from ${admin(schema)}.tasks order by id
    `
    expect(rows).toHaveLength(old.length)
    for (const row of rows) {
      expect(row).toEqual({ priority: 'medium', tags: [], no_tags: true, due_date: null, recurrence: null, remind_at: null })
    }
  })

  describe('the API on the migrated database', () => {
    let server: TestServer
    let api: ReturnType<TestServer['client']>
    beforeAll(async () => {
      server = await startServer({ databaseUrl: url })
      api = server.client(await tokenFor(user))
    })
    afterAll(() => server.close())

    const mine = () => old.filter((r) => r.user_id === user)

    test('when the owner lists their tasks, then each old task comes back with the defaults of the new fields', async () => {
      const { data } = await api.GET('/api/tasks', { params: { query: { sort: 'created_at', order: 'asc' } } })
      expect(data).toEqual(mine().map((r) => ({ ...r, priority: 'medium', tags: [], due_date: null, recurrence: null, remind_at: null })))
    })

    test('when the old tasks are filtered and sorted by the new fields, then they behave as tasks created with the defaults', async () => {
      const medium = await api.GET('/api/tasks', { params: { query: { priority: ['medium'] } } })
      expect(medium.data).toHaveLength(mine().length)
      const tagged = await api.GET('/api/tasks', { params: { query: { tag: ['anything'] } } })
      expect(tagged.data).toEqual([])
      const due = await api.GET('/api/tasks', { params: { query: { due_before: '9999-01-01T00:00:00Z' } } })
      expect(due.data).toEqual([])
      const byDue = await api.GET('/api/tasks', { params: { query: { sort: 'due_date', order: 'asc' } } })
      expect(byDue.data?.map((t) => t.id)).toEqual(mine().map((r) => r.id))
      const counts = await api.GET('/api/tasks/counts')
      const pending = mine().filter((r) => !r.completed).length
      expect(counts.data).toEqual({ all: mine().length, pending, completed: mine().length - pending, overdue: 0 })
    })

    test('when an old task is given the new fields, then they are stored, and a new task gets an id after every old one', async () => {
      const task = mine()[0] as OldRow
      const { data } = await api.PATCH('/api/tasks/{task_id}', {
        params: { path: { task_id: task.id } },
        body: { priority: 'urgent', tags: ['Migrated'], due_date: '2026-01-01T00:00:00Z', recurrence: 'monthly' },
      })
      expect(data).toMatchObject({ id: task.id, title: task.title, priority: 'urgent', tags: ['Migrated'], recurrence: 'monthly' })
      const tagged = await api.GET('/api/tasks', { params: { query: { tag: ['MIGRATED'] } } })
      expect(tagged.data?.map((t: Task) => t.id)).toEqual([task.id])
      const created = await api.POST('/api/tasks', { body: { title: 'new' } })
      expect(created.data?.id).toBeGreaterThan(Math.max(...old.map((r) => r.id)))
    })
  })
})
