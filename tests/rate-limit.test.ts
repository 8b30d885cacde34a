// Issue 7 (abuse limits): rate limits per user and per client address, counted across API processes
// through PostgreSQL. Each describe block runs its servers on a schema of its own, so that counters
// keyed by address (all tests come from 127.0.0.1) never meet those of another test file.
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { parseConfig } from '../src/config.js'
import { freshSchema, type Schema } from './support/schema.js'
import { newUser, startServer, type TestServer, tokenFor } from './support/server.js'

const hour = 3600

/** Polls until the condition holds (5 s at most). */
async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (const deadline = Date.now() + 5000; !(await condition()); await sleep(20)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
  }
}

// Windows are fixed (aligned to the epoch): a test that counts up to a limit must not straddle two.
async function awayFromWindowEnd(windowSeconds: number): Promise<void> {
  const left = windowSeconds * 1000 - (Date.now() % (windowSeconds * 1000))
  if (left < 15_000) await sleep(left + 50)
}

/** The requests PostgreSQL has counted for a key in the current window. */
async function counted(server: TestServer, key: string): Promise<number> {
  const [row] = await server.sql<{ hits: number }[]>`
    select hits from rate_limits where key = ${key} and resets_at > extract(epoch from now())`
  return row?.hits ?? 0
}

const bearer = async (user_id: string) => ({ Authorization: `Bearer ${await tokenFor(user_id)}` })

function expectRateLimited(response: Response, policy: string, limit: number, windowSeconds: number) {
  expect(response.status).toBe(429)
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/)
  const retryAfter = Number(response.headers.get('retry-after'))
  expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= windowSeconds).toBe(true)
  expect(response.headers.get('ratelimit-limit')).toBe(String(limit))
  expect(response.headers.get('ratelimit-remaining')).toBe('0')
  expect(response.headers.get('ratelimit-reset')).toBe(String(retryAfter))
  expect(response.headers.get('ratelimit-policy')).toBe(policy)
}

describe('per user', () => {
  let schema: Schema
  let server: TestServer
  beforeAll(async () => {
    schema = await freshSchema()
    server = await startServer({ databaseUrl: schema.url, rateLimit: { perUser: { limit: 5, windowSeconds: hour } } })
  })
  afterAll(async () => {
    await server?.close()
    await schema?.drop()
  })

  test('when a user sends a 6th request within the window of a 5-per-hour limit, then it is 429 problem+json with Retry-After and RateLimit-*, and another user is unaffected', async () => {
    await awayFromWindowEnd(hour)
    const user = newUser()
    const headers = await bearer(user)
    for (let i = 0; i < 5; i++) {
      const response = await server.fetch('/api/tasks', { headers })
      expect(response.status).toBe(200)
      expect(response.headers.get('ratelimit-limit')).toBe('5')
      expect(response.headers.get('ratelimit-remaining')).toBe(String(4 - i))
      expect(response.headers.get('ratelimit-policy')).toBe('5;w=3600')
    }
    const refused = await server.fetch('/api/tasks', { headers })
    expectRateLimited(refused, '5;w=3600', 5, hour)
    const problem = await refused.json()
    expect(problem).toMatchObject({ type: 'urn:todo-api:problem:rate-limited', status: 429, title: 'Too Many Requests' })
    expect(problem.detail).toBe(`Too many requests for this user; retry in ${refused.headers.get('retry-after')} s.`)

    // Both URL spellings count against the same user, and the 429 comes before validation (no 422) and before any write.
    const invalid = await server.fetch(`/api/${user}/tasks?unexpected=1`, { headers })
    expect(invalid.status).toBe(429)
    const create = await server.fetch('/api/tasks', {
      method: 'POST',
      headers: { ...headers, 'Content-Type': 'application/json' },
      body: JSON.stringify({ title: 'refused' }),
    })
    expect(create.status).toBe(429)
    expect(await server.sql`select 1 from tasks where user_id = ${user}`).toHaveLength(0)

    const other = await server.fetch('/api/tasks', { headers: await bearer(newUser()) })
    expect(other.status).toBe(200)
    expect(other.headers.get('ratelimit-remaining')).toBe('4')
  })

  test('when a request has no valid token, then it counts against no user', async () => {
    await awayFromWindowEnd(hour)
    for (let i = 0; i < 7; i++) expect((await server.fetch('/api/tasks')).status).toBe(401)
    const user = newUser()
    const headers = await bearer(user)
    for (let i = 0; i < 5; i++) expect((await server.fetch('/api/tasks', { headers })).status).toBe(200)
    expect((await server.fetch('/api/tasks', { headers })).status).toBe(429)
    await until(async () => (await counted(server, `user:${user}`)) === 5, 'the five admitted requests are in PostgreSQL')
  })
})

describe('per client address', () => {
  let schema: Schema
  const servers: TestServer[] = []
  const start = async (options: Parameters<typeof startServer>[0]) => {
    const server = await startServer({ databaseUrl: schema.url, ...options })
    servers.push(server)
    return server
  }
  beforeAll(async () => {
    schema = await freshSchema()
  })
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()))
    await schema?.drop()
  })

  test('when RATE_LIMIT_EXEMPT is none, then loopback is limited too: on every route but /health and /ready, secured or not, matched or not', async () => {
    const { exempt } = parseConfig({ RATE_LIMIT_EXEMPT: 'none' }).rateLimit
    const server = await start({ rateLimit: { perIp: { limit: 3, windowSeconds: hour }, exempt } })
    await awayFromWindowEnd(hour)
    for (let i = 0; i < 3; i++) expect((await server.fetch('/openapi.json')).status).toBe(200)
    const refused = await server.fetch('/openapi.json')
    expectRateLimited(refused, '3;w=3600', 3, hour)
    expect((await refused.json()).detail).toMatch(/^Too many requests from this address; retry in \d+ s\.$/)
    expect((await server.fetch('/api/tasks', { headers: await bearer(newUser()) })).status).toBe(429)
    expect((await server.fetch('/api/tasks')).status).toBe(429) // before authentication, too
    expect((await server.fetch('/no/such/path')).status).toBe(429)
    for (const path of ['/health', '/ready']) {
      expect((await server.fetch(path)).status).toBe(200)
      expect((await server.fetch(path, { method: 'HEAD' })).status).toBe(200)
    }
  })

  test('when RATE_LIMIT_EXEMPT is left at its default (loopback), then loopback is never limited per address', async () => {
    const { exempt } = parseConfig({}).rateLimit
    const server = await start({ rateLimit: { perIp: { limit: 3, windowSeconds: hour }, exempt } })
    for (let i = 0; i < 10; i++) {
      const response = await server.fetch('/openapi.json')
      expect(response.status).toBe(200)
      expect(response.headers.get('ratelimit-limit')).toBeNull()
    }
  })

  test('when TRUST_PROXY is off (the default), then X-Forwarded-For is ignored: the peer, loopback, is the client', async () => {
    const server = await start({ rateLimit: { perIp: { limit: 3, windowSeconds: hour } } })
    for (let i = 0; i < 10; i++) {
      expect((await server.fetch('/openapi.json', { headers: { 'X-Forwarded-For': '203.0.113.50' } })).status).toBe(200)
    }
  })

  test('when TRUST_PROXY names the proxy (loopback), then X-Forwarded-For is the client: each address has its own count, and a client cannot claim another', async () => {
    const server = await start({ trustProxy: ['loopback'], rateLimit: { perIp: { limit: 3, windowSeconds: hour } } })
    await awayFromWindowEnd(hour)
    const from = (address: string) => server.fetch('/openapi.json', { headers: { 'X-Forwarded-For': address } })
    for (let i = 0; i < 3; i++) expect((await from('203.0.113.60')).status).toBe(200)
    expectRateLimited(await from('203.0.113.60'), '3;w=3600', 3, hour)
    // What a proxy forwards when the client itself sent `X-Forwarded-For: 127.0.0.1`: the proxy appends the real peer.
    expect((await from('127.0.0.1, 203.0.113.60')).status).toBe(429)
    expect((await from('203.0.113.61')).status).toBe(200)
    // Without X-Forwarded-For the peer is the client: loopback, exempt.
    expect((await server.fetch('/openapi.json')).status).toBe(200)
  })

  test('when an IPv6 client changes its address within its /56, then it is still counted as one client', async () => {
    const server = await start({ trustProxy: 1, rateLimit: { perIp: { limit: 3, windowSeconds: hour } } })
    await awayFromWindowEnd(hour)
    const from = (address: string) => server.fetch('/openapi.json', { headers: { 'X-Forwarded-For': address } })
    expect((await from('2001:db8:0:100::1')).status).toBe(200)
    expect((await from('2001:db8:0:1aa:5:6:7:8')).status).toBe(200)
    expect((await from('2001:db8::1ff:0:0:0:9')).status).toBe(200)
    expect((await from('2001:db8:0:1ff::2')).status).toBe(429)
    expect((await from('2001:db8:0:200::1')).status).toBe(200)
    await until(async () => (await counted(server, 'ip:2001:db8:0:100::/56')) === 3, 'the /56 is counted under one key')
  })

  test('when both limits are off, then nothing is limited, counted or announced', async () => {
    const { rateLimit } = parseConfig({ RATE_LIMIT_PER_USER: 'off', RATE_LIMIT_PER_IP: 'off', RATE_LIMIT_EXEMPT: 'none' })
    const server = await start({ rateLimit })
    const user = newUser()
    const headers = await bearer(user)
    for (let i = 0; i < 20; i++) {
      const response = await server.fetch('/api/tasks', { headers })
      expect(response.status).toBe(200)
      expect(response.headers.get('ratelimit-limit')).toBeNull()
    }
    await server.rateLimiter.flushed()
    expect(await server.sql`select 1 from rate_limits where key = ${`user:${user}`}`).toHaveLength(0)
  })
})

describe('across API processes', () => {
  let schema: Schema
  let a: TestServer
  let b: TestServer
  beforeAll(async () => {
    schema = await freshSchema()
    const rateLimit = { perUser: { limit: 10, windowSeconds: hour } }
    a = await startServer({ databaseUrl: schema.url, rateLimit })
    b = await startServer({ databaseUrl: schema.url, rateLimit })
  })
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()])
    await schema?.drop()
  })

  test('when two processes serve one user, then together they let exactly its limit through (10 per hour), and both refuse the rest', async () => {
    await awayFromWindowEnd(hour)
    const user = newUser()
    const headers = await bearer(user)
    const statuses = async (server: TestServer, n: number) => {
      const result: number[] = []
      for (let i = 0; i < n; i++) result.push((await server.fetch('/api/tasks', { headers })).status)
      return result
    }
    const inPostgres = (n: number) => until(async () => (await counted(a, `user:${user}`)) === n, `PostgreSQL counts ${n}`)

    expect(await statuses(a, 6)).toEqual(Array(6).fill(200))
    await inPostgres(6)
    expect(await statuses(b, 3)).toEqual(Array(3).fill(200))
    await inPostgres(9)
    // A has nothing new to send, but reads back the total of a key that has used half its limit.
    await a.rateLimiter.flushed()
    expect(await statuses(a, 2)).toEqual([200, 429])
    await inPostgres(10)
    await b.rateLimiter.flushed()
    expect(await statuses(b, 1)).toEqual([429])
    expect(await statuses(a, 1)).toEqual([429])
  })
})
