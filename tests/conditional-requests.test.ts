// Lost updates (SPEC.md "Lost updates and retries"): every single-task response carries a strong
// ETag that changes with every write; If-Match makes a write conditional (412 when the task has
// changed, 404 when it does not exist), and If-None-Match makes a GET a 304 when nothing changed.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { etagOf } from '../src/tasks/etag.js'
import { type Task, tasksUrl } from './bad-input.helpers.js'
import { rawRequest, signIn, startServer, type TestServer } from './support/server.js'

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

const json = { 'Content-Type': 'application/json' }

async function withTask(title = 'conditional') {
  const { user_id, token } = await signIn(server)
  const auth = { Authorization: `Bearer ${token}` }
  const created = await server.fetch('/api/tasks', { method: 'POST', headers: { ...auth, ...json }, body: JSON.stringify({ title }) })
  const task = (await created.json()) as Task
  const etag = created.headers.get('etag') as string
  const rows = () => server.sql`select * from tasks where user_id = ${user_id} order by id`
  return { user_id, token, auth, task, etag, rows, url: `/api/tasks/${task.id}` }
}

const rawGet = (url: string, headers: Record<string, string>, method = 'GET') => rawRequest(server, url, headers, method)

describe('ETag', () => {
  test('every single-task response carries the same strong ETag for the same version, and the SDK can compute it', async () => {
    const { auth, task, etag, url } = await withTask()
    expect(etag).toMatch(/^"[^"]+"$/)
    expect(etag).toBe(etagOf(task))
    const got = await server.fetch(url, { headers: auth })
    expect(got.headers.get('etag')).toBe(etag)
    const listed = (await (await server.fetch('/api/tasks', { headers: auth })).json()) as Task[]
    expect(etagOf(listed[0] as Task)).toBe(etag)
  })

  test('the ETag changes with every write, even several within one millisecond, and a PUT of the same values', async () => {
    const { auth, etag, url } = await withTask()
    const seen = new Set([etag])
    for (let i = 0; i < 5; i++) {
      const put = await server.fetch(url, { method: 'PUT', headers: { ...auth, ...json }, body: JSON.stringify({ title: 'conditional' }) })
      expect(put.status).toBe(200)
      const next = put.headers.get('etag') as string
      expect(next).toBe(etagOf((await put.json()) as Task))
      expect(seen.has(next)).toBe(false)
      seen.add(next)
    }
    const toggled = await server.fetch(`${url}/complete`, { method: 'PATCH', headers: auth })
    expect(seen.has(toggled.headers.get('etag') as string)).toBe(false)
  })
})

describe('If-Match on writes', () => {
  const writes: [string, string, (url: string) => string, string | undefined][] = [
    ['PUT', 'PUT', (u) => u, JSON.stringify({ title: 'changed' })],
    ['PATCH', 'PATCH', (u) => u, JSON.stringify({ description: 'changed' })],
    ['PATCH …/complete', 'PATCH', (u) => `${u}/complete`, undefined],
    ['DELETE', 'DELETE', (u) => u, undefined],
  ]
  const write = (auth: Record<string, string>, [, method, at, body]: (typeof writes)[number], url: string, ifMatch?: string) =>
    server.fetch(at(url), {
      method,
      headers: { ...auth, ...(body && json), ...(ifMatch !== undefined && { 'If-Match': ifMatch }) },
      body,
    })

  test.each(writes)('%s with the current ETag succeeds', async (...w) => {
    const { auth, etag, url } = await withTask()
    const response = await write(auth, w, url, etag)
    expect(response.status).toBe(w[0] === 'DELETE' ? 204 : 200)
  })

  test.each(writes)('%s with a stale ETag is 412 and changes nothing', async (...w) => {
    const { auth, etag, url, rows } = await withTask()
    await server.fetch(url, { method: 'PATCH', headers: { ...auth, ...json }, body: JSON.stringify({ title: 'changed elsewhere' }) })
    const before = await rows()
    const response = await write(auth, w, url, etag)
    expect(response.status).toBe(412)
    const problem = await response.json()
    expect(problem).toMatchObject({ type: 'urn:todo-api:problem:precondition-failed', status: 412 })
    expect(problem.detail).toMatch(/changed/)
    expect(await rows()).toEqual(before)
  })

  test.each(writes)('%s with a weak tag of the current version is 412: a weak tag never matches', async (...w) => {
    const { auth, etag, url, rows } = await withTask()
    const before = await rows()
    expect((await write(auth, w, url, `W/${etag}`)).status).toBe(412)
    expect(await rows()).toEqual(before)
  })

  test.each(writes)('%s with a list holding the current ETag, or *, succeeds', async (...w) => {
    const first = await withTask()
    expect((await write(first.auth, w, first.url, `"1-abc", ${first.etag}, W/"x"`)).status).toBeLessThan(300)
    const second = await withTask()
    expect((await write(second.auth, w, second.url, '*')).status).toBeLessThan(300)
  })

  test.each(writes)("%s with If-Match on a missing task, or another user's, is 404, never 412", async (...w) => {
    const mine = await withTask()
    const theirs = await withTask()
    for (const ifMatch of [theirs.etag, '*', '"nonsense"']) {
      const response = await write(mine.auth, w, theirs.url, ifMatch)
      expect(response.status).toBe(404)
    }
    expect((await write(mine.auth, w, '/api/tasks/9007199254740991', '"9007199254740991-0"')).status).toBe(404)
    expect((await theirs.rows()).length).toBe(1)
  })

  test.each(writes)('%s with the ETag of another task, or a malformed tag, is 412', async (...w) => {
    const one = await withTask()
    const other = await server.fetch('/api/tasks', { method: 'POST', headers: { ...one.auth, ...json }, body: '{"title":"other"}' })
    for (const ifMatch of [other.headers.get('etag') as string, 'garbage', '""', '"-"']) {
      expect((await write(one.auth, w, one.url, ifMatch)).status).toBe(412)
    }
  })

  test('path style honours If-Match too', async () => {
    const { user_id, auth, etag, task } = await withTask()
    const url = tasksUrl('path style', user_id, `/${task.id}`)
    const body = JSON.stringify({ title: 'path' })
    const ok = await server.fetch(url, { method: 'PATCH', headers: { ...auth, ...json, 'If-Match': etag }, body })
    expect(ok.status).toBe(200)
    const stale = await server.fetch(url, { method: 'PATCH', headers: { ...auth, ...json, 'If-Match': etag }, body })
    expect(stale.status).toBe(412)
  })

  test('ten concurrent writes with the same If-Match: exactly one succeeds, the others are 412', async () => {
    const { auth, etag, url, task } = await withTask()
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        server.fetch(url, {
          method: 'PATCH',
          headers: { ...auth, ...json, 'If-Match': etag },
          body: JSON.stringify({ title: `writer ${i}` }),
        }),
      ),
    )
    const statuses = responses.map((r) => r.status).sort()
    expect(statuses).toEqual([200, ...Array(9).fill(412)])
    const winner = (await (responses.find((r) => r.status === 200) as Response).json()) as Task
    const [row] = await server.sql`select title from tasks where id = ${task.id}`
    expect(row?.title).toBe(winner.title)
  })

  test('ten concurrent toggles with the same If-Match flip the task exactly once', async () => {
    const { auth, etag, url, task } = await withTask()
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => server.fetch(`${url}/complete`, { method: 'PATCH', headers: { ...auth, 'If-Match': etag } })),
    )
    expect(responses.filter((r) => r.status === 200)).toHaveLength(1)
    const [row] = await server.sql`select completed from tasks where id = ${task.id}`
    expect(row?.completed).toBe(true)
  })
})

describe('If-None-Match on GET', () => {
  test('the current ETag → 304 with the ETag and no body; a stale one → 200 with the task', async () => {
    const { auth, etag, url, token } = await withTask()
    const fresh = await rawGet(url, { ...auth, 'If-None-Match': etag })
    expect(fresh).toEqual({ status: 304, etag, body: '' })
    // The weak form compares equal for If-None-Match (weak comparison, RFC 9110 §13.1.2), and so does a list.
    expect((await rawGet(url, { ...auth, 'If-None-Match': `W/${etag}` })).status).toBe(304)
    expect((await rawGet(url, { ...auth, 'If-None-Match': `"0-0", ${etag}` })).status).toBe(304)
    expect((await rawGet(url, { ...auth, 'If-None-Match': '*' })).status).toBe(304)
    await server
      .client(token)
      .PATCH('/api/tasks/{task_id}', { params: { path: { task_id: Number(url.split('/').pop()) } }, body: { title: 'new' } })
    const stale = await rawGet(url, { ...auth, 'If-None-Match': etag })
    expect(stale.status).toBe(200)
    expect(stale.etag).not.toBe(etag)
    expect(JSON.parse(stale.body)).toMatchObject({ title: 'new' })
  })

  test('a missing task is 404 whatever If-None-Match says', async () => {
    const { auth } = await withTask()
    expect((await rawGet('/api/tasks/9007199254740991', { ...auth, 'If-None-Match': '*' })).status).toBe(404)
  })

  test('HEAD answers like GET without the body, conditional included', async () => {
    const { auth, etag, url } = await withTask()
    const head = await rawGet(url, auth, 'HEAD')
    const get = await rawGet(url, auth)
    expect(head).toEqual({ status: 200, etag, body: '' })
    expect(get.body).not.toBe('')
    expect((await rawGet(url, { ...auth, 'If-None-Match': etag }, 'HEAD')).status).toBe(304)
  })
})

describe('HEAD on every GET route', () => {
  const routes = ['/', '/health', '/ready', '/docs', '/openapi.json', '/openapi.yaml', '/api/tasks', '/api/tasks?limit=1']
  test.each(routes)('HEAD %s has the status and headers of GET, and no body', async (path) => {
    const { auth } = await withTask()
    const get = await server.fetch(path, { headers: auth })
    const head = await server.fetch(path, { method: 'HEAD', headers: auth })
    expect(head.status).toBe(get.status)
    expect(await head.text()).toBe('')
    for (const name of ['content-type', 'content-length', 'link']) expect(head.headers.get(name)).toBe(get.headers.get(name))
  })

  test('HEAD without a token is 401 like GET', async () => {
    const head = await server.fetch('/api/tasks', { method: 'HEAD' })
    expect(head.status).toBe(401)
    expect(head.headers.get('www-authenticate')).toBe('Bearer realm="todo-api"')
  })
})
