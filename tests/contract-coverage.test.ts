// Every operation of the contract, provoked into each status it declares. The responses are
// checked against the contract (tests/support/contract.ts), and global teardown fails the run
// if any declared (operation, status) pair was never seen, so a new status or operation in the
// contract needs a test before the suite passes again.
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { contract, operationsOf } from '../src/contract.js'
import { migrate } from '../src/migrate.js'
import { freshSchema, type Schema } from './support/schema.js'
import { signIn, startServer, type TestServer, testDatabaseUrl } from './support/server.js'

type Entry = ReturnType<typeof operationsOf>[number]
const operations = operationsOf(contract)
const secured = operations.filter((o) => o.operation.security === undefined)
const statusesOf = (o: Entry) => Object.keys(o.operation.responses).map(Number)
const declaring = (status: number) => operations.filter((o) => statusesOf(o).includes(status))
const names = (list: Entry[]) => list.map((o) => [o.operation.operationId, o] as const)

interface Target {
  user_id: string
  task_id: number
}

// The concrete URL of an operation, with the contract's example body when it takes one.
function requestOf({ path, method, operation }: Entry, target: Target) {
  const url = path.replace('{user_id}', encodeURIComponent(target.user_id)).replace('{task_id}', String(target.task_id))
  const requestBody = (operation as { requestBody?: { $ref?: string } }).requestBody
  const name = requestBody?.$ref?.split('/').pop()
  const bodies = (contract.components as { requestBodies: Record<string, { content: Record<string, { example: unknown }> }> }).requestBodies
  const example = name ? bodies[name]?.content['application/json']?.example : undefined
  return { url, method: method.toUpperCase(), body: example === undefined ? undefined : JSON.stringify(example) }
}

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

async function setUp(s: TestServer) {
  const { user_id, token, api } = await signIn(s)
  const { data } = await api.POST('/api/tasks', { body: { title: 'contract coverage' } })
  return { user_id, token, task_id: data?.id ?? 0 }
}

function send(
  s: TestServer,
  entry: Entry,
  target: Target,
  init: { token?: string; body?: string | null; type?: string; query?: string; headers?: Record<string, string> } = {},
) {
  const request = requestOf(entry, target)
  // A bulk DELETE requires `status` (deleting everything is asked for explicitly).
  const required = entry.operation.operationId.startsWith('bulkDelete') ? 'status=all' : ''
  const query = [init.query?.replace(/^\?/, ''), required].filter(Boolean).join('&')
  const body = init.body === null ? undefined : (init.body ?? request.body)
  // What an MCP client accepts (POST /mcp answers 406 to less); the other operations do not read Accept.
  const headers: Record<string, string> = { Accept: 'application/json, text/event-stream', ...init.headers }
  if (init.token) headers.Authorization = `Bearer ${init.token}`
  if (body !== undefined) headers['Content-Type'] = init.type ?? 'application/json'
  return s.fetch(`${request.url}${query ? `?${query}` : ''}`, { method: request.method, headers, body })
}

describe('each operation answers its success status', () => {
  test.each(names(operations))('%s', async (_, entry) => {
    const { user_id, token, task_id } = await setUp(server)
    const response = await send(server, entry, { user_id, task_id }, { token })
    const success = statusesOf(entry).find((s) => s < 300)
    expect(response.status).toBe(success)
  })
})

describe('400: a body that is not JSON', () => {
  test.each(names(declaring(400)))('%s', async (_, entry) => {
    const { user_id, token, task_id } = await setUp(server)
    const response = await send(server, entry, { user_id, task_id }, { token, body: '{"title": "unterminated' })
    expect(response.status).toBe(400)
  })
})

describe('401: no token', () => {
  test.each(names(declaring(401)))('%s', async (_, entry) => {
    const { user_id, task_id } = await setUp(server)
    const response = await send(server, entry, { user_id, task_id })
    expect(response.status).toBe(401)
    // An operation that names its RFC 9728 metadata (POST /mcp) points to it.
    const metadata = (entry.operation as { 'x-resource-metadata'?: string })['x-resource-metadata']
    const pointer = metadata ? `, resource_metadata="${server.url}${metadata}"` : ''
    expect(response.headers.get('www-authenticate')).toBe(`Bearer realm="todo-api"${pointer}`)
  })
})

describe("403: another user's id in the path", () => {
  test.each(names(declaring(403)))('%s', async (_, entry) => {
    const { token, task_id } = await setUp(server)
    const other = await setUp(server)
    const response = await send(server, entry, { user_id: other.user_id, task_id }, { token })
    expect(response.status).toBe(403)
  })
})

describe('404: a task that does not exist', () => {
  test.each(names(declaring(404)))('%s', async (_, entry) => {
    const { user_id, token } = await setUp(server)
    const response = await send(server, entry, { user_id, task_id: Number.MAX_SAFE_INTEGER }, { token })
    expect(response.status).toBe(404)
  })
})

// HEAD answers carry no body (RFC 9110 §9.3.2): what GET would say in it cannot be read back.
const isHead = (entry: Entry) => entry.method === 'head'

describe('304: If-None-Match names the current version', () => {
  test.each(names(declaring(304)))('%s', async (_, entry) => {
    const { user_id, token, task_id } = await setUp(server)
    const response = await send(server, entry, { user_id, task_id }, { token, headers: { 'If-None-Match': '*' } })
    expect(response.status).toBe(304)
    expect(response.headers.get('etag')).toMatch(/^"/)
  })
})

describe('409: an Idempotency-Key reused with another body', () => {
  test.each(names(declaring(409)))('%s', async (_, entry) => {
    const { user_id, token, task_id } = await setUp(server)
    const headers = { 'Idempotency-Key': 'coverage' }
    expect((await send(server, entry, { user_id, task_id }, { token, headers })).status).toBe(201)
    const response = await send(server, entry, { user_id, task_id }, { token, headers, body: '{"title":"another"}' })
    expect(response.status).toBe(409)
  })
})

describe('412: If-Match names another version', () => {
  test.each(names(declaring(412)))('%s', async (_, entry) => {
    const { user_id, token, task_id } = await setUp(server)
    const response = await send(server, entry, { user_id, task_id }, { token, headers: { 'If-Match': `"${task_id}-0"` } })
    expect(response.status).toBe(412)
  })
})

describe('413: a body over 64 KiB', () => {
  test.each(names(declaring(413)))('%s', async (_, entry) => {
    const { user_id, token, task_id } = await setUp(server)
    const body = JSON.stringify({ title: 'x', description: 'y'.repeat(70 * 1024) })
    const response = await send(server, entry, { user_id, task_id }, { token, body })
    expect(response.status).toBe(413)
  })
})

describe('415: a body that is not application/json', () => {
  test.each(names(declaring(415)))('%s', async (_, entry) => {
    const { user_id, token, task_id } = await setUp(server)
    const response = await send(server, entry, { user_id, task_id }, { token, body: 'title=x', type: 'application/x-www-form-urlencoded' })
    expect(response.status).toBe(415)
  })
})

describe('422: a query parameter the contract does not declare', () => {
  test.each(names(declaring(422)))('%s', async (_, entry) => {
    const { user_id, token, task_id } = await setUp(server)
    const response = await send(server, entry, { user_id, task_id }, { token, query: '?unexpected=1' })
    expect(response.status).toBe(422)
    if (isHead(entry)) return
    const problem = await response.json()
    expect(problem.errors).toEqual([{ location: 'query', path: 'unexpected', message: expect.any(String) }])
  })
})

describe("429: over a rate limit (the user's on secured operations, the client address's on the others)", () => {
  let limited: TestServer
  let schema: Schema
  // Through a trusted proxy (loopback), each request comes from the address X-Forwarded-For gives.
  let addresses = 0
  const nextAddress = () => {
    addresses++
    return `198.18.${addresses >> 8}.${addresses & 255}`
  }
  beforeAll(async () => {
    schema = await freshSchema()
    const once = { limit: 1, windowSeconds: 3600 }
    limited = await startServer({ databaseUrl: schema.url, trustProxy: ['loopback'], rateLimit: { perUser: once, perIp: once } })
  })
  afterAll(async () => {
    await limited?.close()
    await schema?.drop()
  })

  test.each(names(declaring(429)))('%s', async (_, entry) => {
    const { user_id, token } = await signIn(limited)
    const secured = entry.operation.security === undefined
    const address = nextAddress()
    // The one request the limit allows: the user's (from another address), or this address's.
    const first = secured
      ? await limited.fetch('/api/tasks', { headers: { Authorization: `Bearer ${token}`, 'X-Forwarded-For': nextAddress() } })
      : await limited.fetch('/openapi.json', { headers: { 'X-Forwarded-For': address } })
    expect(first.status).toBe(200)
    const headers = { 'X-Forwarded-For': address }
    const response = await send(limited, entry, { user_id, task_id: 1 }, { token: secured ? token : undefined, headers })
    expect(response.status).toBe(429)
    expect(response.headers.get('retry-after')).toMatch(/^\d+$/)
    expect(response.headers.get('ratelimit-policy')).toBe('1;w=3600')
    if (entry.method !== 'head') expect((await response.json()).type).toBe('urn:todo-api:problem:rate-limited')
  })
})

describe('500: the database fails unexpectedly (its tables are gone)', () => {
  let broken: TestServer
  beforeAll(async () => {
    const schema = `broken_${randomUUID().replace(/-/g, '')}`
    await server.sql`create schema ${server.sql(schema)}`
    const url = new URL(testDatabaseUrl())
    url.searchParams.set('search_path', schema)
    await migrate(url.toString())
    await server.sql`alter table ${server.sql(schema)}.tasks rename to tasks_gone`
    await server.sql`alter table ${server.sql(schema)}.task_events rename to task_events_gone`
    broken = await startServer({ databaseUrl: url.toString() })
  })
  afterAll(() => broken.close())

  test.each(names(declaring(500)))('%s answers 500 with only the request id', async (_, entry) => {
    const { user_id, token } = await signIn(broken)
    const response = await send(broken, entry, { user_id, task_id: 1 }, { token })
    expect(response.status).toBe(500)
    if (isHead(entry)) return
    const problem = await response.json()
    const requestId = response.headers.get('x-request-id')
    expect(problem.detail).toBe(`An unexpected error occurred; quote request id ${requestId}.`)
    expect(JSON.stringify(problem)).not.toMatch(/tasks|relation|select|stack/i)
  })
})

describe('503: PostgreSQL cannot be reached', () => {
  let down: TestServer
  beforeAll(async () => {
    down = await startServer({ databaseUrl: 'postgres://nobody:nothing@127.0.0.1:1/none' })
  })
  afterAll(() => down.close())

  test.each(names(declaring(503)))('%s', async (_, entry) => {
    const { user_id, token } = await signIn(down)
    const response = await send(down, entry, { user_id, task_id: 1 }, { token })
    expect(response.status).toBe(503)
  })

  test('health still answers 200: the process runs', async () => {
    const response = await down.fetch('/health')
    expect(response.status).toBe(200)
  })
})

test('every secured operation is secured by bearerAuth and every public one declares security: []', () => {
  expect(secured.length).toBe(31) // 14 single-task and list operations, 2 counts, 4 bulk, 2 event streams, the MCP server, and the HEAD twins of the 8 GETs
  expect(operations.filter((o) => o.operation.security !== undefined).every((o) => (o.operation.security as unknown[]).length === 0)).toBe(
    true,
  )
})
