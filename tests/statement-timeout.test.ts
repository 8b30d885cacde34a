// Issue 7 (abuse limits): DATABASE_STATEMENT_TIMEOUT. A query PostgreSQL cancels for taking too long
// (SQLSTATE 57014) is a 503 the client may retry, never a 500, and its connection serves on.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import type { components } from '../generated/api.js'
import { connect, type Sql } from '../src/db.js'
import { signIn, startServer, type TestServer, testDatabaseUrl } from './support/server.js'

type Task = components['schemas']['Task']

const timeout = 300
let server: TestServer
/** Another client of the database, outside the API: it holds the lock the API's query waits for. */
let other: Sql

beforeAll(async () => {
  server = await startServer({ statementTimeout: timeout })
  other = connect(testDatabaseUrl(), { max: 1 })
})
afterAll(async () => {
  await server?.close()
  await other?.end()
})

describe(`DATABASE_STATEMENT_TIMEOUT (${timeout} ms here)`, () => {
  test('when an update waits for a row another transaction holds, then after the timeout it is 503 problem+json, and nothing changed', async () => {
    const { user_id, api } = await signIn(server)
    const { data: task } = await api.POST('/api/tasks', { body: { title: 'locked elsewhere' } })
    const { id } = task as Task

    const started = Date.now()
    const answer = await other.begin(async (tx) => {
      await tx`select id from tasks where id = ${id} for update`
      return api.PATCH('/api/tasks/{task_id}', { params: { path: { task_id: id } }, body: { title: 'changed' } })
    })
    expect(answer.response.status).toBe(503)
    expect(answer.error).toMatchObject({
      type: 'urn:todo-api:problem:unavailable',
      status: 503,
      detail: 'The database took too long to answer; try again shortly.',
    })
    expect(Date.now() - started).toBeGreaterThanOrEqual(timeout)
    const [row] = await other<{ title: string }[]>`select title from tasks where id = ${id} and user_id = ${user_id}`
    expect(row?.title).toBe('locked elsewhere')
  })

  test('when queries have timed out, then the pool serves on: more requests at once than it has connections all succeed', async () => {
    const { api } = await signIn(server)
    const { data: task } = await api.POST('/api/tasks', { body: { title: 'before' } })
    const { id } = task as Task
    await other.begin(async (tx) => {
      await tx`select id from tasks where id = ${id} for update`
      // Every connection of the pool (4) gets a query cancelled.
      const answers = await Promise.all(
        Array.from({ length: 4 }, () => api.PATCH('/api/tasks/{task_id}', { params: { path: { task_id: id } }, body: { title: 'x' } })),
      )
      expect(answers.map((a) => a.response.status)).toEqual([503, 503, 503, 503])
    })
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        api.PATCH('/api/tasks/{task_id}', { params: { path: { task_id: id } }, body: { title: `after ${i}` } }),
      ),
    )
    expect(answers.map((a) => a.response.status)).toEqual(Array(12).fill(200))
    const { data: listed } = await api.GET('/api/tasks')
    expect(listed?.map((t) => t.id)).toEqual([id])
  })

  test("when the pool connects, then each connection carries the timeout, as PostgreSQL's statement_timeout", async () => {
    const rows = await Promise.all(Array.from({ length: 4 }, () => server.sql<{ statement_timeout: string }[]>`show statement_timeout`))
    expect(rows.map(([row]) => row?.statement_timeout)).toEqual(Array(4).fill(`${timeout}ms`))
  })
})
