// Every list query is served by an index in its own order: no Sort node, no scan of other users'
// rows, and a page reads at most limit + 1 index entries wherever it starts. The statement
// explained is the one the repository really sends: postgres.js's debug hook records it (text and
// parameters) while listTasks runs against a schema holding enough rows (and fresh statistics) for
// the planner to choose its plan on its own; no planner setting is forced, except to look at the
// generic plan that a pooled connection switches to after a statement's fifth execution. A search
// (q) is one statement with two branches, decided as it runs: both are explained, and the test
// checks which one ran.
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { connect, type Sql } from '../src/db.js'
import { claimReminders, eventsAfter } from '../src/events/outbox.js'
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
  'Actual Loops'?: number
  'Rows Removed by Filter'?: number
  'Rows Removed by Index Recheck'?: number
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
// Tasks older than the rest of the heavy user's, which a search finds through the trigram index
// (they are last in descending order), and the only tasks of another user, whose short list a
// search reads in order: both must find the same.
const shortList = 'short-list-user'
const special = [
  { title: 'Invoice 100%_paid', description: null },
  { title: 'invoice 100x paid', description: 'not the same' },
  { title: 'INVOICE 100%', description: null },
  { title: 'receipt', description: 'see Invoice 100%_PAID' },
]

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
  // with ties in every sort key and titles in mixed case, a rare word ("Quokka", in 4 of the heavy
  // user's descriptions and about 20 of the others'), and the special tasks; then fresh
  // statistics, as autovacuum would gather them.
  // Organize fields (issue 8): the four priorities, due dates with ties and a quarter without one,
  // a common tag ("Work", on a third of the tasks) and a rare one ("Rare", on 4 of the heavy user's
  // and about 20 of the others'), with tag_keys as the API writes them (`<user_id>\x1f<tag lower-cased>`).
  await admin`
    insert into ${admin(schema)}.tasks (user_id, title, description, completed, created_at, updated_at, priority, tags, tag_keys, due_date)
    select u,
           case when i % 2 = 0 then 'Task ' || (i % 37) else 'TASK ' || (i % 41) end,
           nullif(concat_ws(' ', case when i % 5 = 0 then 'note ' || i end, case when i % 1009 = 0 then 'Quokka' end), ''),
           i % 3 = 0,
           timestamptz '2021-01-01 00:00:00Z' + (i / 3) * interval '1 millisecond',
           timestamptz '2022-01-01 00:00:00Z' + ((i * 7919) % 10007 / 2) * interval '1 millisecond',
           (array['low', 'medium', 'high', 'urgent'])[1 + (i * 7 / 3) % 4],
           tags, array(select u || chr(31) || lower(tag) from unnest(tags) as tag),
           case when i % 4 <> 1 then timestamptz '2023-01-01 00:00:00Z' + ((i * 31) % 5003) * interval '1 minute' end
    from generate_series(1, ${heavyTasks + users * perUser}) as i,
         lateral (select array_remove(array[case when i % 3 = 1 then 'Work' end, case when i % 1013 = 0 then 'Rare' end], null) as tags) as t,
         lateral (select case when i % 5 = 0 then ${heavy} else 'user-' || (i / 5 % ${users}) end as u) as owner
  `
  await admin`
    insert into ${admin(schema)}.tasks (user_id, title, description, created_at, updated_at)
    select u, title, description, timestamptz '2020-01-01Z' + n * interval '1 second', timestamptz '2020-01-01Z'
    from unnest(${special.map((s) => s.title)}::text[], ${special.map((s) => s.description)}::text[]) with ordinality as s (title, description, n),
         unnest(array[${heavy}, ${shortList}]) as u
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

/**
 * Runs listTasks and returns the statement it sent, with the page it got. A tag-filtered list is
 * planned for its own tags every time (a transaction with plan_cache_mode = force_custom_plan
 * around the one statement): it has no generic plan to look at.
 */
async function statementOf(user_id: string, options: ListOptions) {
  recorded.length = 0
  const page = await listTasks(db, user_id, options)
  if (options.tag?.length) {
    expect(recorded.map((r) => r.query.trim())).toEqual([
      'begin',
      'set local plan_cache_mode = force_custom_plan',
      expect.any(String),
      'commit',
    ])
    return { statement: { ...(recorded[2] as Statement), customOnly: true }, page }
  }
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

const quoted = (text: string) => `'${text.replace(/'/g, "''")}'`
// An array parameter (a filter's priorities or tags) as an array literal: '{"a","b"}'.
const literal = (value: unknown): string =>
  typeof value === 'string'
    ? quoted(value)
    : Array.isArray(value)
      ? quoted(`{${value.map((v) => `"${String(v).replace(/["\\]/g, '\\$&')}"`).join(',')}}`)
      : String(value)

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

// sort=due_date has an index per order (tasks without a due date last in both), read backward for desc like the others.
const indexFor = (sort: Sort, status: Status, order: Order = 'asc') =>
  `tasks_user_${status === 'all' ? '' : 'status_'}${{ created_at: 'created', updated_at: 'updated', title: 'title', priority: 'priority', due_date: `due_${order}` }[sort]}`

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
  expect(scan['Index Name']).toBe(indexFor(sort, status, order))
  expect(scan['Scan Direction']).toBe(order === 'asc' ? 'Forward' : 'Backward')
  // The index itself delimits the user's rows (and the status, and the cursor position): nothing is read to be thrown away.
  expect(scan['Index Cond']).toMatch(/\buser_id = /)
  if (status !== 'all') expect(scan['Index Cond']).toMatch(/completed/)
  if (cursor) expect(scan['Index Cond']).toMatch(/ROW\(/)
  expect(scan.Filter).toBeUndefined()
  expect(scan['Rows Removed by Filter'] ?? 0).toBe(0)
  expect(scan['Actual Rows']).toBeLessThanOrEqual(limit + 1)
}

const combinations = (['created_at', 'updated_at', 'title', 'due_date', 'priority'] as const).flatMap((sort) =>
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

// A search (q) runs one of two branches, chosen as the statement runs from the user's next 200
// tasks in list order: read in order (the list's ordered index scan, filtered, stopping at the page's
// end) when the term is common there, the list is short or the term has no trigram; else collected
// through the trigram index (tasks_user_search) and sorted. Either way every read goes through an
// index that starts with user_id, so no other user's row is ever read.
const search = (user_id: string, q: string, options: Partial<ListOptions> = {}) =>
  statementOf(user_id, { sort: 'created_at', order: 'desc', status: 'all', limit: 10, q, ...options })

const ran = (nodes: PlanNode[]) => nodes.filter((n) => (n['Actual Loops'] ?? 0) > 0)
const throughSearchIndex = (n: PlanNode) => n['Node Type'] === 'Bitmap Index Scan' && n['Index Name'] === 'tasks_user_search'
const inOrder = (n: PlanNode) => n['Node Type'] === 'Index Scan' && /strpos/.test(n.Filter ?? '')

/** No sequential scan, and every index scan (run or not) is of a user_id-led index, bound to the user. */
function expectOnlyTheUsersRows(nodes: PlanNode[]) {
  expect(nodes.map((n) => n['Node Type'])).not.toContain('Seq Scan')
  const scans = nodes.filter((n) => ['Index Scan', 'Index Only Scan', 'Bitmap Index Scan'].includes(n['Node Type']))
  expect(scans.length).toBeGreaterThan(0)
  for (const scan of scans) {
    // tasks_tags holds each user's tags as keys of their own: a lookup there finds only that user's rows.
    if (scan['Index Name'] === 'tasks_tags') {
      expect(scan['Index Cond']).toMatch(/tag_keys @>/)
      continue
    }
    expect(scan['Index Name']).toMatch(/^tasks_user_/)
    expect(scan['Index Cond']).toMatch(/\buser_id = /)
  }
}

/** The ids of the user's tasks matching q, in list order, straight from SQL. */
async function matchingIds(user_id: string, q: string, order: Order = 'desc') {
  const pattern = `%${q.replace(/[\\%_]/g, '\\$&')}%`
  const rows = await admin<{ id: number }[]>`
    select id from ${admin(schema)}.tasks where user_id = ${user_id} and (title ilike ${pattern} or description ilike ${pattern})
    order by created_at ${order === 'asc' ? admin`asc` : admin`desc`}, id ${order === 'asc' ? admin`asc` : admin`desc`}
  `
  return rows.map((r) => Number(r.id))
}

describe("a search reads only the user's rows, through the plan its term calls for", () => {
  test.each(['quokka', 'QUOKKA'])(
    "when the user with 5000 tasks searches for a rare word (%s), then it is found through the trigram index, with the user's entries only",
    async (q) => {
      const { statement, page } = await search(heavy, q)
      expect(page.tasks.map((t) => t.id)).toEqual(await matchingIds(heavy, q))
      expect(page.tasks).toHaveLength(4)
      for (const nodes of [await customPlan(statement), await genericPlan(statement)]) {
        expectOnlyTheUsersRows(nodes)
        expect(ran(nodes).filter(throughSearchIndex).length).toBeGreaterThan(0)
        expect(ran(nodes).filter(inOrder)).toEqual([])
        // The index returned the user's matches only: no row was read to be thrown away.
        const heap = ran(nodes).find((n) => n['Node Type'] === 'Bitmap Heap Scan') as PlanNode
        expect(heap['Actual Rows']).toBe(4)
        expect((heap['Rows Removed by Filter'] ?? 0) + (heap['Rows Removed by Index Recheck'] ?? 0)).toBe(0)
        // Deciding took at most 200 of the user's index entries.
        const probe = ran(nodes).find((n) => n['Node Type'] === 'Index Scan' && !n.Filter) as PlanNode
        expect(probe['Actual Rows']).toBeLessThanOrEqual(200)
      }
    },
  )

  test.each(combinations.filter(([, , status]) => status === 'all'))(
    "when the user with 5000 tasks searches sort=%s order=%s for a word in almost every title, then the list is read in order and stops at the page's end",
    async (sort, order, status) => {
      const { statement, page } = await search(heavy, 'task', { sort, order, status })
      expect(page.tasks).toHaveLength(10)
      for (const nodes of [await customPlan(statement), await genericPlan(statement)]) {
        expectOnlyTheUsersRows(nodes)
        expect(ran(nodes).filter(throughSearchIndex)).toEqual([])
        const scans = ran(nodes).filter(inOrder)
        expect(scans).toHaveLength(1)
        const scan = scans[0] as PlanNode
        expect(scan['Index Name']).toBe(indexFor(sort, status, order))
        expect(scan['Scan Direction']).toBe(order === 'asc' ? 'Forward' : 'Backward')
        // limit + 1 matches, and in ascending order the special tasks, which come first and do not match
        expect((scan['Actual Rows'] ?? 0) + (scan['Rows Removed by Filter'] ?? 0)).toBeLessThanOrEqual(11 + special.length)
      }
    },
  )

  test.each(['k 1', 'as', '%'])(
    'when the user with 5000 tasks searches for %j (no three letters or digits in a row: no trigram), then the list is read in order, never through the trigram index',
    async (q) => {
      const { statement } = await search(heavy, q, { status: 'pending' })
      for (const nodes of [await customPlan(statement), await genericPlan(statement)]) {
        expectOnlyTheUsersRows(nodes)
        expect(ran(nodes).filter(throughSearchIndex)).toEqual([])
        expect(
          ran(nodes)
            .filter(inOrder)
            .map((n) => n['Index Name']),
        ).toEqual([indexFor('created_at', 'pending')])
      }
    },
  )

  test('when a user with 100 tasks searches for a rare word, then the whole short list is read in order, not the trigram index', async () => {
    const user = `user-${users / 2}`
    const { statement, page } = await search(user, 'quokka')
    expect(page.tasks.map((t) => t.id)).toEqual(await matchingIds(user, 'quokka'))
    for (const nodes of [await customPlan(statement), await genericPlan(statement)]) {
      expectOnlyTheUsersRows(nodes)
      expect(ran(nodes).filter(throughSearchIndex)).toEqual([])
      const [scan] = ran(nodes).filter(inOrder)
      expect((scan?.['Actual Rows'] ?? 0) + (scan?.['Rows Removed by Filter'] ?? 0)).toBeLessThanOrEqual(perUser)
    }
  })

  test('when a rare-word search continues from a cursor, then the index still finds only the matches after it', async () => {
    const first = await search(heavy, 'quokka', { limit: 2 })
    const rest = await search(heavy, 'quokka', { limit: 2, after: throughCursor(first.page.next) })
    expect([...first.page.tasks, ...rest.page.tasks].map((t) => t.id)).toEqual(await matchingIds(heavy, 'quokka'))
    expect(rest.page.next).toBeUndefined()
    for (const nodes of [await customPlan(rest.statement), await genericPlan(rest.statement)]) {
      expectOnlyTheUsersRows(nodes)
      expect(ran(nodes).filter(throughSearchIndex).length).toBeGreaterThan(0)
    }
  })

  // Both branches must mean the same: case-insensitive, % and _ literal, a null description.
  test.each([
    ['100%_paid', ['Invoice 100%_paid', 'receipt']],
    ['ICE 100%', ['INVOICE 100%', 'Invoice 100%_paid', 'receipt']],
    ['VOICE 100%_', ['Invoice 100%_paid', 'receipt']],
    ['100x', ['invoice 100x paid']],
    ['100%paid', []],
    ['oice 100_', []],
  ])(
    'when searching for %j, then the trigram index (in the long list) and the read in order (in the short one) find the same tasks',
    async (q, titles) => {
      const byIndex = await search(heavy, q)
      const inOrderRead = await search(shortList, q)
      expect(byIndex.page.tasks.map((t) => t.title).sort()).toEqual([...titles].sort())
      expect(inOrderRead.page.tasks.map((t) => t.title)).toEqual(byIndex.page.tasks.map((t) => t.title))
      expect(ran(await customPlan(byIndex.statement)).filter(throughSearchIndex).length).toBeGreaterThan(0)
      expect(ran(await customPlan(inOrderRead.statement)).filter(throughSearchIndex)).toEqual([])
    },
  )
})

// Organizing tasks (issue 8): the new sorts page through tasks without a due date by the same index,
// a tag filter finds a rare tag through the GIN index tasks_user_tags, and no filter makes a list
// read or sort the whole of a user's tasks.
describe('sort=due_date past the last dated task', () => {
  test.each(['asc', 'desc'] as const)(
    'when the user with 5000 tasks pages sort=due_date order=%s among the tasks without a due date, then the page still reads at most limit + 1 entries',
    async (order) => {
      const deep = await statementOf(heavy, { sort: 'due_date', order, status: 'all', limit: 4000 })
      expect(deep.page.tasks.at(-1)?.due_date).toBeNull()
      const page = await statementOf(heavy, { sort: 'due_date', order, status: 'all', limit: 50, after: throughCursor(deep.page.next) })
      expect(page.page.tasks).toHaveLength(50)
      expect(page.page.tasks.every((t) => t.due_date === null)).toBe(true)
      expectIndexOrder(await customPlan(page.statement), 'due_date', order, 'all', 50, true)
      expectIndexOrder(await genericPlan(page.statement), 'due_date', order, 'all', 50, true)
    },
  )
})

/**
 * No sequential scan, only user-led indexes, and no scan reading or Sort fed more than `bound` rows
 * (never a whole user's tasks), in the custom plan and in the generic plan a pooled connection
 * switches to; what breaks it is listed, plan by plan.
 */
async function expectNoWholeRead(statement: Statement, bound: number) {
  const excess: string[] = []
  for (const [name, nodes] of [
    ['custom', await customPlan(statement)],
    ...((statement as { customOnly?: boolean }).customOnly ? [] : ([['generic', await genericPlan(statement)]] as const)),
  ] as const) {
    expectOnlyTheUsersRows(nodes)
    for (const node of nodes) {
      const input = /Sort$/.test(node['Node Type']) ? node.Plans?.[0] : /Scan$/.test(node['Node Type']) ? node : undefined
      if (!input) continue
      const read =
        ((input['Actual Rows'] ?? 0) + (input['Rows Removed by Filter'] ?? 0) + (input['Rows Removed by Index Recheck'] ?? 0)) *
        (input['Actual Loops'] ?? 1)
      if (read > bound) excess.push(`${name} plan: ${node['Node Type']} ${node['Index Name'] ?? ''} over ${read} rows`)
    }
  }
  expect(excess).toEqual([])
}

/** The ids of the heavy user's tasks carrying every key, newest first, straight from SQL. */
async function taggedIds(user_id: string, tags: string[]) {
  const keys = tags.map((tag) => `${user_id}\x1f${tag}`)
  const rows = await admin<{ id: number }[]>`
    select id from ${admin(schema)}.tasks where user_id = ${user_id} and tag_keys @> ${keys}::text[] order by created_at desc, id desc
  `
  return rows.map((r) => Number(r.id))
}

describe('a tag filter', () => {
  test.each(['Rare', 'RARE'])(
    'when the user with 5000 tasks filters by a rare tag (%s), then the GIN index tasks_tags finds exactly their tasks with it',
    async (tag) => {
      const { statement, page } = await statementOf(heavy, { sort: 'created_at', order: 'desc', status: 'all', limit: 10, tag: [tag] })
      expect(page.tasks.map((t) => t.id)).toEqual(await taggedIds(heavy, ['rare']))
      expect(page.tasks).toHaveLength(4)
      await expectNoWholeRead(statement, 4)
      const nodes = await customPlan(statement)
      const gin = ran(nodes).filter((n) => n['Node Type'] === 'Bitmap Index Scan' && n['Index Name'] === 'tasks_tags')
      expect(gin).toHaveLength(1)
      // The key names the user's tag: the index finds their tasks with it, and no other row.
      expect(gin[0]?.['Index Cond']).toMatch(/tag_keys @>/)
      expect(gin[0]?.['Actual Rows']).toBe(4)
    },
  )

  test.each(combinations.filter(([, , status]) => status !== 'completed'))(
    'when the user with 5000 tasks filters sort=%s order=%s status=%s by a common tag, then no plan reads or sorts all their tasks',
    async (sort, order, status) => {
      const { statement, page } = await statementOf(heavy, { sort, order, status, limit: 10, tag: ['work'] })
      expect(page.tasks).toHaveLength(10)
      expect(page.tasks.every((t) => t.tags.includes('Work'))).toBe(true)
      await expectNoWholeRead(statement, heavyTasks / 2)
    },
  )
})

describe('priority and due filters', () => {
  const filters: [string, Partial<ListOptions>][] = [
    ['priority=urgent', { priority: ['urgent'] }],
    ['priority=low&priority=high', { priority: ['low', 'high'] }],
    ['a due window', { due_after: '2023-01-02T00:00:00Z', due_before: '2023-01-03T00:00:00Z' }],
    ['due_before', { due_before: '2023-01-01T12:00:00Z' }],
  ]
  const sorts = (['created_at', 'due_date', 'priority'] as const).flatMap((sort) =>
    (['asc', 'desc'] as const).map((order) => [sort, order] as const),
  )
  test.each(
    filters.flatMap(([name, f]) =>
      sorts.map(([sort, order]): [string, Partial<ListOptions>, Sort, Order] => [`${name}, sort=${sort} order=${order}`, f, sort, order]),
    ),
  )('when the user with 5000 tasks lists %s, then no plan reads or sorts all their tasks', async (_, f, sort, order) => {
    const { statement, page } = await statementOf(heavy, { sort, order, status: 'all', limit: 10, ...f })
    expect(page.tasks.length).toBeGreaterThan(0)
    await expectNoWholeRead(statement, heavyTasks / 2)
  })
})

describe('live updates read through indexes too', () => {
  /** The plan of the one statement `run` sends (EXPLAIN without ANALYZE: a claim is not carried out). */
  async function planOfStatement(run: () => Promise<unknown>): Promise<PlanNode[]> {
    recorded.length = 0
    await run()
    expect(recorded).toHaveLength(1)
    const { query, parameters } = recorded[0] as Statement
    return planOf(await db.unsafe(`explain (format json) ${query}`, parameters as never[]))
  }
  const scansOf = (nodes: PlanNode[]) => nodes.filter((n) => /Scan$/.test(n['Node Type']) && n['Node Type'] !== 'CTE Scan')

  test('when every process looks for due reminders each second, then it reads only the pending ones (tasks_reminders_pending)', async () => {
    const nodes = await planOfStatement(() => claimReminders(db, 200))
    const onTasks = scansOf(nodes).filter((n) => n['Index Name']?.startsWith('tasks_') || n['Node Type'] === 'Seq Scan')
    expect(onTasks.map((n) => n['Index Name'])).toContain('tasks_reminders_pending')
    expect(nodes.some((n) => n['Node Type'] === 'Seq Scan')).toBe(false)
  })

  test("when a stream reads a user's new events, then it reads them in order from task_events_pkey", async () => {
    const nodes = await planOfStatement(() => eventsAfter(db, heavy, 0, 500))
    expect(nodes.some((n) => n['Node Type'] === 'Seq Scan' || n['Node Type'] === 'Sort')).toBe(false)
    expect(scansOf(nodes).map((n) => n['Index Name'])).toEqual(['task_events_pkey'])
  })
})
