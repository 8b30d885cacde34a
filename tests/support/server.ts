import { randomUUID } from 'node:crypto'
import { appendFileSync, mkdirSync } from 'node:fs'
import { request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import createClient, { type Client } from 'openapi-fetch'
import { type Logger, pino } from 'pino'
import type { paths } from '../../generated/api.js'
import { createApp, createHttpServer } from '../../src/app.js'
import { createVerifier } from '../../src/auth.js'
import { type Config, parseConfig } from '../../src/config.js'
import { openPool, type Sql } from '../../src/db.js'
import { createEventHub, type EventHub, type EventHubOptions } from '../../src/events/hub.js'
import { type EventWorkOptions, startEventWork } from '../../src/events/worker.js'
import { createRateLimiter, type RateLimiter } from '../../src/rate-limit.js'
import { operationFor, violations } from './contract.js'

export const secret = 'a-test-secret-that-is-at-least-32-characters'

export interface TestServer {
  /** e.g. http://127.0.0.1:39123 */
  readonly url: string
  /** The pool the server uses (also for asserting database state). */
  readonly sql: Sql
  /** The typed SDK client, with the Bearer header when a token is given. */
  client(token?: string): Client<paths>
  /** A raw request (for bodies the SDK would never send); recorded and checked like SDK calls. */
  fetch(path: string, init?: RequestInit): Promise<Response>
  /** The server's rate limiter (doing nothing unless `rateLimit` turned a limit on). */
  readonly rateLimiter: RateLimiter
  /** The server's event hub (`await server.events.listening` before counting on notifications). */
  readonly events: EventHub
  close(): Promise<void>
}

export interface ServerOptions {
  /** Another database (a broken schema, an unreachable server); closed with the server. */
  databaseUrl?: string
  /** postgres.js named prepared statements (DATABASE_PREPARE); default true. */
  prepare?: boolean
  auth?: Partial<Config['auth']>
  /** Shorter HTTP timeouts (milliseconds) than the defaults. */
  timeouts?: Partial<Config['timeouts']>
  /** Where the server logs (default: silent, or TEST_LOG_LEVEL). */
  logger?: Logger
  /** Rate limits, off unless given (exempt: loopback, as by default); flushMs as in createRateLimiter. */
  rateLimit?: Partial<Config['rateLimit']> & { flushMs?: number }
  /** TRUST_PROXY; default false. */
  trustProxy?: Config['trustProxy']
  /** DATABASE_STATEMENT_TIMEOUT in milliseconds; 0: none; default: the configuration's default. */
  statementTimeout?: number
  /** The event hub's settings (listenUrl: DATABASE_DIRECT_URL) and the reminder and pruning rounds'. */
  events?: Partial<Pick<EventHubOptions, 'listenUrl' | 'heartbeatMs' | 'maxStreamsPerUser' | 'notifyGapMs'>> & EventWorkOptions
}

/** The real app on an ephemeral port against the real PostgreSQL of this test run. */
export async function startServer(options: ServerOptions = {}): Promise<TestServer> {
  const pool = {
    databasePrepare: options.prepare ?? true,
    databasePoolSize: 4,
    databaseStatementTimeout:
      options.statementTimeout === 0 ? undefined : (options.statementTimeout ?? parseConfig({}).databaseStatementTimeout),
  }
  const sql = openPool(pool, options.databaseUrl ?? testDatabaseUrl(), { connect_timeout: 2 })
  const auth: Config['auth'] = { secret, jwksUrl: undefined, issuer: undefined, audience: undefined, userClaim: 'sub', ...options.auth }
  const logger = options.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' })
  const timeouts = { ...parseConfig({}).timeouts, ...options.timeouts }
  const { flushMs, ...limits } = options.rateLimit ?? {}
  const rateLimit = { perUser: undefined, perIp: undefined, exempt: ['loopback'], ...limits }
  const trustProxy = options.trustProxy ?? false
  const rateLimiter = createRateLimiter(sql, { rateLimit, trustProxy }, { logger, flushMs })
  const config = { corsOrigins: ['http://localhost:3000'], validateResponses: true, timeouts, trustProxy, auth }
  const { listenUrl, heartbeatMs, maxStreamsPerUser, notifyGapMs, ...work } = options.events ?? {}
  const events = createEventHub({
    sql,
    listenUrl: listenUrl ?? options.databaseUrl ?? testDatabaseUrl(),
    logger,
    heartbeatMs,
    maxStreamsPerUser,
    notifyGapMs,
  })
  const eventWork = startEventWork(sql, logger, events.changed, work)
  const app = createApp({ sql, verify: createVerifier(auth), config, logger, rateLimiter, events })
  const server = createHttpServer(app, { config, logger }).listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const checkedFetch = async (input: Request) => {
    const response = await fetch(input)
    await check(input.method, new URL(input.url).pathname, response.clone())
    return response
  }
  return {
    url,
    sql,
    client: (token) =>
      createClient<paths>({ baseUrl: url, fetch: checkedFetch, headers: token ? { Authorization: `Bearer ${token}` } : {} }),
    fetch: (path, init) => checkedFetch(new Request(`${url}${path}`, init)),
    rateLimiter,
    events,
    async close() {
      await Promise.all([events.close(), eventWork.stop()])
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await rateLimiter.close()
      await sql.end({ timeout: 1 })
    },
  }
}

export function testDatabaseUrl(): string {
  const url = process.env.TEST_DB_URL
  if (!url) throw new Error('TEST_DB_URL is unset: run the tests through jest (npm test), whose global setup starts PostgreSQL')
  return url
}

/** A fresh user id: tests isolate themselves by never sharing users. */
export function newUser(): string {
  return `user-${randomUUID()}`
}

/** An HS256 token for the user, as Better Auth with the shared secret would sign it. */
export function tokenFor(user_id: string, claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ sub: user_id, ...claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(secret))
}

/** A user with a token and a client for it. */
export async function signIn(server: TestServer) {
  const user_id = newUser()
  const token = await tokenFor(user_id)
  return { user_id, token, api: server.client(token) }
}

// Every response seen by a test must conform to the contract; each (operation, status) is logged
// so that global teardown can fail the run when a declared status was never exercised.
async function check(method: string, pathname: string, response: Response): Promise<void> {
  // An event stream stays open: its events are checked where a test reads them (tests/events.test.ts).
  const streaming = response.headers.get('content-type')?.startsWith('text/event-stream')
  const body = streaming ? '' : await response.text()
  const problems = violations(method, pathname, { status: response.status, headers: response.headers, body })
  const dir = process.env.TEST_CONTRACT_LOG_DIR
  if (dir) {
    mkdirSync(dir, { recursive: true })
    const line = JSON.stringify({ operation: operationFor(method, pathname), status: response.status })
    appendFileSync(join(dir, `${process.pid}.jsonl`), `${line}\n`)
  }
  if (problems.length > 0) throw new Error(`response breaks the contract:\n${problems.join('\n')}\n${body.slice(0, 500)}`)
}

/**
 * A request through node:http, not fetch: fetch adds `Cache-Control: no-cache` to a conditional
 * request (If-None-Match), which would hide a 304. Not checked against the contract.
 */
export function rawRequest(server: TestServer, path: string, headers: Record<string, string>, method = 'GET') {
  return new Promise<{ status: number; etag?: string; body: string }>((resolve, reject) => {
    request(`${server.url}${path}`, { method, headers }, (response) => {
      let body = ''
      response.on('data', (chunk) => {
        body += chunk
      })
      response.on('end', () => resolve({ status: response.statusCode ?? 0, etag: response.headers.etag, body }))
    })
      .on('error', reject)
      .end()
  })
}
