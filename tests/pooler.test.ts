// Issue 6, behind a pooler: the API through a real PgBouncer 1.18 in transaction-pooling mode (what
// Neon's pooled URLs are). Two server connections serve the app's four client connections, so the
// statements of concurrent requests interleave on shared server connections. With DATABASE_PREPARE
// left on, the same traffic breaks: the last describe block shows how.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { pino } from 'pino'
import type { components } from '../generated/api.js'
import { parseConfig } from '../src/config.js'
import { checkStatementTimeout, connect, openDatabase, openPool, type Sql } from '../src/db.js'
import { migrate } from '../src/migrate.js'
import { dataOf, openEvents } from './support/events.js'
import { havePgBouncer, type PgBouncer, pgbouncerPath, startPgBouncer } from './support/pgbouncer.js'
import { signIn, startServer, type TestServer, testDatabaseUrl } from './support/server.js'

type Task = components['schemas']['Task']

if (!havePgBouncer) {
  console.warn(
    `tests/pooler.test.ts: SKIPPED, no PgBouncer at ${pgbouncerPath}. Install it (apt-get install -y pgbouncer) or set PGBOUNCER_PATH.`,
  )
}
const describeBehindPgBouncer = havePgBouncer ? describe : describe.skip

const poolSize = 2
let bouncer: PgBouncer
let server: TestServer
// A PgBouncer of its own for the app with prepared statements on, whose server connections it breaks.
let brokenBouncer: PgBouncer
let broken: TestServer
/** Straight to PostgreSQL, not through PgBouncer: what is really in the database. */
let direct: Sql

beforeAll(async () => {
  if (!havePgBouncer) return
  direct = connect(testDatabaseUrl(), { max: 1 })
  bouncer = await startPgBouncer({ target: testDatabaseUrl(), poolSize })
  // The event listener connects directly (DATABASE_DIRECT_URL): LISTEN needs a session of its own.
  server = await startServer({ databaseUrl: bouncer.url, prepare: false, events: { listenUrl: testDatabaseUrl() } })
  brokenBouncer = await startPgBouncer({ target: testDatabaseUrl(), poolSize })
  // Without DATABASE_STATEMENT_TIMEOUT: PgBouncer would refuse that startup parameter before any statement could break.
  broken = await startServer({
    databaseUrl: brokenBouncer.url,
    prepare: true,
    statementTimeout: 0,
    events: { listenUrl: testDatabaseUrl() },
  })
})
afterAll(async () => {
  await Promise.all([server?.close(), broken?.close()])
  await Promise.all([bouncer?.stop(), brokenBouncer?.stop()])
  await direct?.end()
})

const auth = (token: string) => ({ headers: { Authorization: `Bearer ${token}` } })

/** Every task of a list, following `Link: <…>; rel="next"` as given; also the number of pages. */
async function walk(on: TestServer, token: string, first: string): Promise<{ tasks: Task[]; pages: number }> {
  const tasks: Task[] = []
  let pages = 0
  for (let url: string | undefined = first; url !== undefined; pages++) {
    const response = await on.fetch(url, auth(token))
    expect(response.status).toBe(200)
    tasks.push(...((await response.json()) as Task[]))
    url = /^<([^>]+)>; rel="next"$/.exec(response.headers.get('link') ?? '')?.[1]
    if (pages > 20) throw new Error('the walk does not end')
  }
  return { tasks, pages }
}

/** One user's whole life through the API: every CRUD path, each checked, then the database. */
async function workThrough(on: TestServer, stranger: ReturnType<TestServer['client']>) {
  const { user_id, token, api } = await signIn(on)
  const created = await Promise.all(
    ['echo', 'alpha', 'delta', 'charlie', 'bravo'].map((title, i) =>
      api.POST('/api/tasks', { body: { title, description: i % 2 ? null : `${title} needle`, completed: i === 3 } }),
    ),
  )
  for (const { response } of created) expect(response.status).toBe(201)
  const tasks = created.map(({ data }) => data as Task)
  const [echo, alpha, delta, charlie, bravo] = tasks as [Task, Task, Task, Task, Task]

  const fetched = await api.GET('/api/tasks/{task_id}', { params: { path: { task_id: alpha.id } } })
  expect(fetched.data).toEqual(alpha)

  const pending = await walk(on, token, '/api/tasks?status=pending&sort=title&order=asc&limit=2')
  expect(pending.tasks.map((t) => t.title)).toEqual(['alpha', 'bravo', 'delta', 'echo'])
  expect(pending.pages).toBe(2)
  const searched = await walk(on, token, `/api/${user_id}/tasks?q=NEEDLE&sort=title&order=desc&limit=2`)
  expect(searched.tasks.map((t) => t.title)).toEqual(['echo', 'delta', 'bravo'])
  expect(searched.pages).toBe(2)
  expect(new Set([...pending.tasks, ...searched.tasks].map((t) => t.user_id))).toEqual(new Set([user_id]))

  const replaced = await api.PUT('/api/tasks/{task_id}', {
    params: { path: { task_id: alpha.id } },
    body: { title: 'alpha, replaced', description: 'new', completed: false },
  })
  expect(replaced.data).toMatchObject({ id: alpha.id, title: 'alpha, replaced', description: 'new', completed: false })
  const patched = await api.PATCH('/api/{user_id}/tasks/{task_id}', {
    params: { path: { user_id, task_id: bravo.id } },
    body: { description: 'patched' },
  })
  expect(patched.data).toMatchObject({ title: 'bravo', description: 'patched' })
  const toggled = await api.PATCH('/api/tasks/{task_id}/complete', { params: { path: { task_id: charlie.id } } })
  expect(toggled.data?.completed).toBe(false)

  const foreign = await stranger.GET('/api/tasks/{task_id}', { params: { path: { task_id: delta.id } } })
  expect(foreign.response.status).toBe(404)
  expect(foreign.error?.type).toBe('urn:todo-api:problem:not-found')

  const deleted = await api.DELETE('/api/tasks/{task_id}', { params: { path: { task_id: echo.id } } })
  expect(deleted.response.status).toBe(204)

  const rows = await direct<{ title: string; description: string | null; completed: boolean }[]>`
    select title, description, completed from tasks where user_id = ${user_id} order by title`
  expect([...rows]).toEqual([
    { title: 'alpha, replaced', description: 'new', completed: false },
    { title: 'bravo', description: 'patched', completed: false },
    { title: 'charlie', description: null, completed: false },
    { title: 'delta', description: 'delta needle', completed: false },
  ])
}

describeBehindPgBouncer('through PgBouncer in transaction mode, with DATABASE_PREPARE=false', () => {
  test('when one user creates, gets, lists, pages, replaces, patches, toggles and deletes tasks, then every answer and the database are right', async () => {
    await workThrough(server, (await signIn(server)).api)
  })

  test(`when 24 users do all of that at once over ${poolSize} server connections, then every request succeeds and each sees only its own tasks`, async () => {
    const before = await queriesServed()
    const stranger = (await signIn(server)).api
    await Promise.all(Array.from({ length: 24 }, () => workThrough(server, stranger)))

    // The app's four client connections shared the two server connections.
    const clients = await bouncer.admin<{ database: string; application_name: string }[]>`show clients`.simple()
    expect(clients.filter((c) => c.database === 'postgres' && c.application_name === 'todo-api')).toHaveLength(4)
    const servers = await bouncer.admin<{ database: string }[]>`show servers`.simple()
    expect(servers.filter((s) => s.database === 'postgres').length).toBeLessThanOrEqual(poolSize)
    expect((await queriesServed()) - before).toBeGreaterThanOrEqual(24 * 15)
  })

  test('when writes go through PgBouncer and the listener connects directly, then each change reaches the stream, in order', async () => {
    await server.events.listening
    const { token, api } = await signIn(server)
    const stream = await openEvents(server, token)
    const created = (await api.POST('/api/tasks', { body: { title: 'pooled' } })).data as Task
    const completed = (await api.PATCH('/api/tasks/{task_id}/complete', { params: { path: { task_id: created.id } } })).data as Task
    await stream.until((events) => events.length >= 2)
    stream.close()
    expect(dataOf(stream.events)).toEqual([
      { event: 'task.created', data: created },
      { event: 'task.updated', data: completed },
    ])
  })

  test('when the configuration names a pooled DATABASE_URL, a DATABASE_DIRECT_URL and DATABASE_PREPARE=false, then the pool goes through PgBouncer and migrations through the direct URL', async () => {
    const config = parseConfig({ DATABASE_URL: bouncer.url, DATABASE_DIRECT_URL: testDatabaseUrl(), DATABASE_PREPARE: 'false' })
    const database = await openDatabase(config, pino({ level: 'silent' }))
    try {
      expect(database).toMatchObject({ url: testDatabaseUrl(), poolUrl: bouncer.url })
      await migrate(database.url)
      const before = await queriesServed()
      // The pool every API process serves with (src/server.ts).
      const pool = openPool(config, database.poolUrl)
      try {
        const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => pool<{ n: number }[]>`select ${i}::int as n`))
        expect(answers.map(([row]) => row?.n)).toEqual(Array.from({ length: 40 }, (_, i) => i))
        expect((await queriesServed()) - before).toBeGreaterThanOrEqual(40)
      } finally {
        await pool.end()
      }
    } finally {
      await database.close()
    }
  })

  test('when DATABASE_STATEMENT_TIMEOUT is set, then it is not sent through the pooler (PgBouncer refuses unknown startup parameters), and start-up warns while the role sets none', async () => {
    const config = parseConfig({ DATABASE_URL: bouncer.url, DATABASE_PREPARE: 'false', DATABASE_STATEMENT_TIMEOUT: '5s' })
    const refused = connect(bouncer.url, { max: 1, prepare: false, connect_timeout: 2, connection: { statement_timeout: 5000 } })
    await expect(refused`select 1`).rejects.toMatchObject({ code: '08P01', message: 'unsupported startup parameter: statement_timeout' })
    await refused.end()

    const pool = openPool(config, bouncer.url)
    try {
      expect(await pool`show statement_timeout`).toEqual([{ statement_timeout: '0' }])
    } finally {
      await pool.end()
    }
    const warnings: string[] = []
    const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line).msg) })
    await checkStatementTimeout(config, bouncer.url, logger)
    expect(warnings).toEqual([expect.stringContaining("ALTER ROLE <user> SET statement_timeout = '5000ms'")])
  })
})

/** Queries PgBouncer has passed to PostgreSQL so far. */
async function queriesServed(): Promise<number> {
  const stats = await bouncer.admin<{ database: string; total_query_count: string }[]>`show stats`.simple()
  return Number(stats.find((s) => s.database === 'postgres')?.total_query_count ?? 0)
}

// What PgBouncer 1.18 does to postgres.js's named prepared statements, as observed here: postgres.js
// prepares a new statement with Parse+Describe+Flush (no Sync) and sends Bind+Execute+Sync only once
// the description is back. PgBouncer releases a server connection at every ReadyForQuery, so the two
// halves can reach different server connections, and the answer to the first half can arrive when no
// client is linked: PgBouncer drops it (its log: "got packet '1' from server when not linked") and
// closes that server connection as dirty. Requests then answer 500 (prepared statement "…" does not
// exist; a RangeError or TypeError inside postgres.js parsing a row against another statement's
// description; a create whose RETURNING row never came) or never answer: such queries were still
// pending after 200 s, and the stuck client connections make most later requests hang too. With one
// client connection, or one server connection, no failure was seen: it takes the interleaving.
describeBehindPgBouncer('through PgBouncer in transaction mode, with DATABASE_PREPARE left on (the default)', () => {
  /** 'ok', the status of a failure, or 'no answer' within 5 s. */
  async function outcome(call: (signal: AbortSignal) => Promise<{ response: Response }>): Promise<string> {
    try {
      const { response } = await call(AbortSignal.timeout(5000))
      return response.ok ? 'ok' : String(response.status)
    } catch (error) {
      if ((error as Error).name === 'TimeoutError') return 'no answer'
      throw error
    }
  }

  test('when 24 users create and list tasks at once, then requests fail with 500 or never get an answer', async () => {
    const outcomes: string[] = []
    // One burst has always been enough here; two more keep the proof from resting on one roll of the dice.
    for (let burst = 0; burst < 3 && !outcomes.some((o) => o !== 'ok'); burst++) {
      const results = await Promise.all(
        Array.from({ length: 24 }, async (_, i) => {
          const { api } = await signIn(broken)
          return Promise.all([
            outcome((signal) => api.POST('/api/tasks', { body: { title: `task ${i}` }, signal })),
            outcome((signal) => api.GET('/api/tasks', { params: { query: { status: 'pending', sort: 'title' } }, signal })),
          ])
        }),
      )
      outcomes.push(...results.flat())
    }
    expect(outcomes.filter((o) => o !== 'ok').length).toBeGreaterThan(0)
    for (const o of outcomes) expect(['ok', '500', 'no answer']).toContain(o)
  }, 60_000)
})
