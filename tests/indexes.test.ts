// Every list query is served by an index in its own order: no Sort node, no scan of other users'
// rows, and a page reads at most limit + 1 index entries wherever it starts. The statement
// explained is the one the repository really sends: postgres.js's debug hook records it (text and
// parameters) while listTasks runs against a schema holding enough rows (and fresh statistics) for
// the planner to choose its plan on its own; no planner setting is forced, except to look at the
// generic plan that a pooled connection switches to after a statement's fifth execution.
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { connect, type Sql } from '../src/db.js'
import { migrate } from '../src/migrate.js'
import { type ListOptions, listTasks } from '../src/tasks/repository.js'
import { testDatabaseUrl } from './support/server.js'

type Sort = ListOptions['sort']
type Order = ListOptions['order']
type Status = ListOptions['status']

interface PlanNode {
  'Node Type': string
  'Index Name'?: string
  'Scan Direction'?: string
  'Index Cond'?: string
  Filter?: string
  'Actual Rows'?: number
  'Rows Removed by Filter'?: number
  Plans?: PlanNode[]
}

interface Statement {
  query: string
  parameters: unknown[]
}

const schema = `indexes_${randomUUID().replace(/-/g, '')}`
const users = 200
const perUser = 100
const heavy = 'heavy-user'
const heavyTasks = 5000

let admin: Sql
let db: Sql
const recorded: Statement[] = []

beforeAll(async () => {
  admin = connect(testDatabaseUrl(), { max: 1 })
  await admin`create schema ${admin(schema)}`
  const url = new URL(testDatabaseUrl())
  url.searchParams.set('search_path', schema)
  await migrate(url.toString())
  // 200 users with 100 tasks each and one user with 5000 (every fifth task), interleaved in time,
  // with ties in every sort key and titles in mixed case; then fresh statistics, as autovacuum
  // would gather them.
  await admin`
    insert into ${admin(schema)}.tasks (user_id, title, description, completed, created_at, updated_at)
    select case when i % 5 = 0 then ${heavy} else 'user-' || (i / 5 % ${users}) end,
           case when i % 2 = 0 then 'Task ' || (i % 37) else 'TASK ' || (i % 41) end,
           case when i % 5 = 0 then 'note ' || i end,
           i % 3 = 0,
           timestamptz '2021-01-01 00:00:00Z' + (i / 3) * interval '1 millisecond',
           timestamptz '2022-01-01 00:00:00Z' + ((i * 7919) % 10007 / 2) * interval '1 millisecond'
    from generate_series(1, ${heavyTasks + users * perUser}) as i
  `
  await admin`analyze ${admin(schema)}.tasks`
  db = connect(url.toString(), {
    max: 1,
    debug: (_connection: number, query: string, parameters: unknown[]) => {
      recorded.push({ query, parameters: [...parameters] })
    },
  })
  await db`select 1` // postgres.js's own start-up queries (type lookups) are done before anything is recorded
}, 30_000)

afterAll(async () => {
  await db?.end()
  if (admin) {
    await admin`drop schema ${admin(schema)} cascade`
    await admin.end()
  }
})

/** Runs listTasks and returns the statement it sent, with the page it got. */
async function statementOf(user_id: string, options: ListOptions) {
  recorded.length = 0
  const page = await listTasks(db, user_id, options)
  expect(recorded).toHaveLength(1)
  return { statement: recorded[0] as Statement, page }
}

/** The cursor as the routes hand it to listTasks: through JSON and back (a Date becomes its ISO string). */
const throughCursor = (next: unknown) => JSON.parse(JSON.stringify(next)) as ListOptions['after']

function nodesOf(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodesOf)]
}

/** Every node of the plan EXPLAIN (FORMAT JSON) answered. */
function planOf(rows: Record<string, unknown>[]): PlanNode[] {
  const [row] = rows as [{ 'QUERY PLAN': [{ Plan: PlanNode }] }]
  return nodesOf(row['QUERY PLAN'][0].Plan)
}

/** EXPLAIN ANALYZE of the statement with its own parameters (a custom plan, as for the first executions). */
async function customPlan({ query, parameters }: Statement): Promise<PlanNode[]> {
  return planOf(await db.unsafe(`explain (analyze, format json) ${query}`, parameters as never[]))
}

const literal = (value: unknown) => (typeof value === 'string' ? `'${value.replace(/'/g, "''")}'` : String(value))

/** EXPLAIN ANALYZE of the generic plan PostgreSQL may cache for the prepared statement after five executions. */
async function genericPlan({ query, parameters }: Statement): Promise<PlanNode[]> {
  const connection = await db.reserve()
  try {
    await connection.unsafe('set plan_cache_mode = force_generic_plan')
    await connection.unsafe(`prepare list_statement as ${query}`)
    return planOf(await connection.unsafe(`explain (analyze, format json) execute list_statement(${parameters.map(literal).join(', ')})`))
  } finally {
    await connection.unsafe('deallocate list_statement')
    await connection.unsafe('reset plan_cache_mode')
    connection.release()
  }
}

const indexFor = (sort: Sort, status: Status) =>
  `tasks_user_${status === 'all' ? '' : 'status_'}${{ created_at: 'created', updated_at: 'updated', title: 'title' }[sort]}`

/** One index scan of the expected index in the order's direction, on this user's rows only, and nothing sorted. */
function expectIndexOrder(nodes: PlanNode[], sort: Sort, order: Order, status: Status, limit: number, cursor: boolean) {
  const types = nodes.map((n) => n['Node Type'])
  expect(types).not.toContain('Sort')
  expect(types).not.toContain('Incremental Sort')
  expect(types).not.toContain('Seq Scan')
  expect(types).not.toContain('Bitmap Heap Scan')
  const scans = nodes.filter((n) => n['Node Type'] === 'Index Scan')
  expect(scans).toHaveLength(1)
  const scan = scans[0] as PlanNode
  expect(scan['Index Name']).toBe(indexFor(sort, status))
  expect(scan['Scan Direction']).toBe(order === 'asc' ? 'Forward' : 'Backward')
  // The index itself delimits the user's rows (and the status, and the cursor position): nothing is read to be thrown away.
  expect(scan['Index Cond']).toMatch(/\buser_id = /)
  if (status !== 'all') expect(scan['Index Cond']).toMatch(/completed/)
  if (cursor) expect(scan['Index Cond']).toMatch(/ROW\(/)
  expect(scan.Filter).toBeUndefined()
  expect(scan['Rows Removed by Filter'] ?? 0).toBe(0)
  expect(scan['Actual Rows']).toBeLessThanOrEqual(limit + 1)
}

const combinations = (['created_at', 'updated_at', 'title'] as const).flatMap((sort) =>
  (['asc', 'desc'] as const).flatMap((order) => (['all', 'pending', 'completed'] as const).map((status) => [sort, order, status] as const)),
)

describe('every sort × order × status is an ordered index scan', () => {
  test.each(combinations)(
    'when listing sort=%s order=%s status=%s, then the first page and a later page read only their rows, in index order',
    async (sort, order, status) => {
      const user = `user-${users / 2}`
      const first = await statementOf(user, { sort, order, status, limit: 10 })
      expect(first.page.tasks).toHaveLength(10)
      expectIndexOrder(await customPlan(first.statement), sort, order, status, 10, false)
      expectIndexOrder(await genericPlan(first.statement), sort, order, status, 10, false)

      const second = await statementOf(user, { sort, order, status, limit: 10, after: throughCursor(first.page.next) })
      expect(second.page.tasks).toHaveLength(10)
      expectIndexOrder(await customPlan(second.statement), sort, order, status, 10, true)
      expectIndexOrder(await genericPlan(second.statement), sort, order, status, 10, true)
    },
  )
})

describe('the cost of a page does not grow with the page number', () => {
  test.each(combinations.filter(([, order]) => order === 'desc'))(
    'when the user with 5000 tasks asks sort=%s order=%s status=%s from deep down the list, then the page still reads at most limit + 1 entries',
    async (sort, order, status) => {
      const deep = await statementOf(heavy, { sort, order, status, limit: 1500 })
      expect(deep.page.next).toBeDefined()
      const page = await statementOf(heavy, { sort, order, status, limit: 50, after: throughCursor(deep.page.next) })
      expect(page.page.tasks).toHaveLength(50)
      expectIndexOrder(await customPlan(page.statement), sort, order, status, 50, true)
      expectIndexOrder(await genericPlan(page.statement), sort, order, status, 50, true)
    },
  )
})

// A substring search cannot be answered from these b-tree indexes: whichever way the planner goes
// (an ordered index scan with a filter, or a bitmap of the user's rows and a top-N sort), it must
// reach the rows through a user_id index and look at no row of another user.
describe("a search reads only the user's rows", () => {
  test.each(combinations.filter(([, , status]) => status === 'all'))(
    "when searching with q and sort=%s order=%s, then the rows are reached through a user_id index and no other user's row is read",
    async (sort, order) => {
      const { statement } = await statementOf(`user-${users / 2}`, { sort, order, status: 'all', limit: 10, q: 'task 1' })
      for (const nodes of [await customPlan(statement), await genericPlan(statement)]) {
        expect(nodes.map((n) => n['Node Type'])).not.toContain('Seq Scan')
        const indexScans = nodes.filter((n) => ['Index Scan', 'Bitmap Index Scan'].includes(n['Node Type']))
        expect(indexScans.length).toBeGreaterThan(0)
        for (const scan of indexScans) {
          expect(scan['Index Name']).toMatch(/^tasks_user_/)
          expect(scan['Index Cond']).toMatch(/\buser_id = /)
        }
        const heap = nodes.find((n) => ['Index Scan', 'Bitmap Heap Scan'].includes(n['Node Type'])) as PlanNode
        expect((heap['Actual Rows'] ?? 0) + (heap['Rows Removed by Filter'] ?? 0)).toBeLessThanOrEqual(perUser)
      }
    },
  )
})
