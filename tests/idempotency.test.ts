// Retried creates (SPEC.md "Lost updates and retries"): POST with an Idempotency-Key creates at
// most one task per (user, key); a retry gets the original 201, another body under the same key
// is 409, and so is a duplicate that arrives while the first is still running.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import type { Task } from './bad-input.helpers.js'
import { signIn, startServer, type TestServer } from './support/server.js'

let server: TestServer
let other: TestServer
beforeAll(async () => {
  // Two API "processes" on one database: keys live in PostgreSQL, not in a process.
  ;[server, other] = await Promise.all([startServer(), startServer()])
})
afterAll(() => Promise.all([server.close(), other.close()]))

async function user() {
  const { user_id, token } = await signIn(server)
  const count = async () => Number((await server.sql`select count(*) from tasks where user_id = ${user_id}`)[0]?.count)
  const create = (key: string | undefined, body: unknown, via = server, path = '/api/tasks') =>
    via.fetch(path, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${token}`,
        'Content-Type': 'application/json',
        ...(key !== undefined && { 'Idempotency-Key': key }),
      },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    })
  return { user_id, token, count, create }
}

const snapshot = async (response: Response) => ({
  status: response.status,
  location: response.headers.get('location'),
  etag: response.headers.get('etag'),
  body: await response.text(),
})

describe('a retry with the same key and body', () => {
  test('gets the original 201 (same task, Location, ETag and body) and creates nothing', async () => {
    const { create, count } = await user()
    const first = await snapshot(await create('key-1', { title: 'Buy milk', description: '2 l' }))
    expect(first.status).toBe(201)
    const retry = await create('key-1', { title: 'Buy milk', description: '2 l' })
    expect(retry.headers.get('idempotent-replayed')).toBe('true')
    expect(await snapshot(retry)).toEqual(first)
    expect(await count()).toBe(1)
  })

  test('is recognised through another API process, whatever the JSON spelling of the same body', async () => {
    const { create, count } = await user()
    const first = await snapshot(await create('key-2', '{"title":"Call mum","completed":false}'))
    const retry = await snapshot(await create('key-2', '{ "completed": false,\n "title": "Call mum" }', other))
    expect(retry).toEqual(first)
    expect(await count()).toBe(1)
  })

  test('answers the original even after the task changed or was deleted', async () => {
    const { create, token } = await user()
    const first = await snapshot(await create('key-3', { title: 'original' }))
    const id = (JSON.parse(first.body) as Task).id
    await server.client(token).DELETE('/api/tasks/{task_id}', { params: { path: { task_id: id } } })
    expect(await snapshot(await create('key-3', { title: 'original' }))).toEqual(first)
  })
})

describe('409', () => {
  test('the same key with another body is 409 and creates nothing', async () => {
    const { create, count } = await user()
    await create('key-4', { title: 'first' })
    const reused = await create('key-4', { title: 'second' })
    expect(reused.status).toBe(409)
    expect(await reused.json()).toMatchObject({ type: 'urn:todo-api:problem:idempotency-key-reused', status: 409 })
    expect(await count()).toBe(1)
  })

  test('twenty concurrent duplicates through two processes create exactly one task; the others replay it or are 409', async () => {
    const { create, count } = await user()
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => create('key-5', { title: 'once' }, i % 2 ? server : other).then(snapshot)),
    )
    expect(await count()).toBe(1)
    const created = responses.filter((r) => r.status === 201)
    expect(created.length).toBeGreaterThanOrEqual(1)
    expect(new Set(created.map((r) => r.body)).size).toBe(1)
    for (const r of responses.filter((r) => r.status !== 201)) {
      expect(r.status).toBe(409)
      expect(JSON.parse(r.body).type).toBe('urn:todo-api:problem:idempotency-key-in-use')
    }
  })
})

describe('keys', () => {
  test('are per user: two users may use the same key', async () => {
    const a = await user()
    const b = await user()
    const first = (await (await a.create('shared', { title: 'same' })).json()) as Task
    const second = (await (await b.create('shared', { title: 'same' })).json()) as Task
    expect(second.id).not.toBe(first.id)
    expect(second.user_id).toBe(b.user_id)
  })

  test('a create without a key is never deduplicated', async () => {
    const { create, count } = await user()
    await create(undefined, { title: 'twice' })
    await create(undefined, { title: 'twice' })
    expect(await count()).toBe(2)
  })

  test.each([
    ['an empty key', ''],
    ['256 characters', 'k'.repeat(256)],
    ['a control character', 'key\u0001'],
    ['a non-ASCII character', 'clé'],
  ])('%s is 422 on the Idempotency-Key header and creates nothing', async (_, key) => {
    const { create, count } = await user()
    const response = await create(key, { title: 'x' }).catch(() => undefined)
    // fetch itself refuses to send some header values; the server must refuse the others.
    if (response === undefined) return expect(['key\u0001', 'clé']).toContain(key)
    expect(response.status).toBe(422)
    const { errors } = (await response.json()) as { errors: { location: string; path: string }[] }
    expect([...new Set(errors.map((e) => `${e.location} ${e.path}`))]).toEqual(['header idempotency-key'])
    expect(await count()).toBe(0)
  })

  test('255 printable ASCII characters, spaces included, are a valid key', async () => {
    const { create } = await user()
    const key = `a b~${'x'.repeat(251)}`
    expect((await create(key, { title: 'long key' })).status).toBe(201)
    expect((await create(key, { title: 'long key' })).headers.get('idempotent-replayed')).toBe('true')
  })

  test('a key older than 24 hours is forgotten: the same key creates a new task', async () => {
    const { create, count, user_id } = await user()
    await create('old', { title: 'yesterday' })
    await server.sql`update idempotency_keys set created_at = now() - interval '25 hours' where user_id = ${user_id}`
    expect((await create('old', { title: 'another body is fine now' })).status).toBe(201)
    expect(await count()).toBe(2)
  })

  test('path style and token style share the keys of a user', async () => {
    const { create, count, user_id } = await user()
    const first = await snapshot(await create('both', { title: 'x' }, server, `/api/${user_id}/tasks`))
    expect(first.location).toMatch(new RegExp(`^/api/${user_id}/tasks/\\d+$`))
    expect(await snapshot(await create('both', { title: 'x' }))).toEqual(first)
    expect(await count()).toBe(1)
  })
})
