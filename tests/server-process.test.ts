// The real entry point as an operator runs it: `node --import tsx src/server.ts` in its own process,
// with the embedded PostgreSQL it starts by itself under a temporary DATA_DIR. Not `npm start`:
// signalling npm would leave its child running (TOOLCHAIN pitfall 4).
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { connect } from '../src/db.js'
import { openEvents } from './support/events.js'
import { newUser, secret, testDatabaseUrl, tokenFor } from './support/server.js'

const project = fileURLToPath(new URL('..', import.meta.url))
const run = promisify(execFile)

interface LogLine {
  level?: number
  msg?: string
  port?: number
  req?: { id?: string; method?: string; url?: string }
  res?: { status?: number }
  [key: string]: unknown
}
interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}
interface Launched {
  readonly child: ChildProcess
  /** Every stdout line parsed as JSON (a line that is not JSON fails the test that reads it). */
  readonly logs: LogLine[]
  readonly output: { stdout: string; stderr: string }
  readonly exited: Promise<Exit>
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>
}
interface ServerProcess extends Launched {
  readonly url: string
  readonly dataDir: string
}

let scratch: string
const children = new Set<Launched>()
const dataDirs = new Set<string>()

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'todo-api-process-'))
  chmodSync(scratch, 0o755) // the embedded PostgreSQL runs as the postgres user when we are root
})

// Whatever happened in the tests: no server process and no PostgreSQL of ours outlives the file.
afterAll(async () => {
  for (const launched of children) {
    if (launched.child.exitCode === null && launched.child.signalCode === null) launched.child.kill('SIGKILL')
    await launched.exited
  }
  for (const dir of dataDirs) await stopPostgresOf(dir)
  if (scratch) rmSync(scratch, { recursive: true, force: true })
}, 30_000)

describe('the server process', () => {
  test('when it is stopped with SIGTERM and started again on the same data directory, then the tasks are still there', async () => {
    const dataDir = freshDataDir()
    const token = await tokenFor(newUser())
    const first = await startServer(dataDir)
    expect(first.logs.map((l) => l.msg)).toContain('created the embedded PostgreSQL cluster')
    for (const title of ['first', 'second', 'third']) expect((await post(first, token, { title })).status).toBe(201)
    const before = await list(first, token)
    expect(before.map((t) => t.title).sort()).toEqual(['first', 'second', 'third'])

    expect(await stop(first)).toEqual({ code: 0, signal: null })
    expect(first.logs.map((l) => l.msg)).toEqual(expect.arrayContaining(['shutting down', 'stopped the embedded PostgreSQL', 'stopped']))
    expect(existsSync(join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false)

    const second = await startServer(dataDir)
    expect(second.logs.map((l) => l.msg)).not.toContain('created the embedded PostgreSQL cluster')
    expect(await list(second, token)).toEqual(before)
    expect(await stop(second)).toEqual({ code: 0, signal: null })
  }, 60_000)

  test('when SIGTERM arrives while writes are in flight, then they all finish, none fails with 5xx, and every acknowledged one survives a restart', async () => {
    const dataDir = freshDataDir()
    const token = await tokenFor(newUser())
    const server = await startServer(dataDir)

    // 25 writes certainly in flight when the signal lands: the server has read their headers
    // (it answered 100 Continue) and waits for their bodies.
    const inFlight = Array.from({ length: 25 }, (_, i) => slowPost(server, token, { title: `in flight ${i}` }))
    await Promise.all(inFlight.map((w) => w.continued))
    // 25 more fired just before the signal: each is either acknowledged or never answered.
    const racing = Array.from({ length: 25 }, (_, i) =>
      post(server, token, { title: `racing ${i}` }).then(
        async (response) => ({ status: response.status, body: response.status === 201 ? ((await response.json()) as Task) : undefined }),
        () => ({ status: 0, body: undefined }), // refused or cut before any answer: not acknowledged
      ),
    )
    server.child.kill('SIGTERM')
    await server.waitForLog((l) => l.msg === 'shutting down')

    // It stops accepting at once (refused, or reset when the connection beat the listening
    // socket's close by a hair)...
    expect(['ECONNREFUSED', 'ECONNRESET']).toContain(await probe(server.url))
    // ...but finishes what it has started, and only then exits.
    for (const write of inFlight) write.sendBody()
    const finished = await Promise.all(inFlight.map((w) => w.response))
    expect(finished.map((r) => r.status)).toEqual(inFlight.map(() => 201))
    const raced = await Promise.all(racing)
    expect(raced.map((r) => r.status).filter((s) => s !== 201 && s !== 0)).toEqual([]) // in particular, no 5xx
    expect(await server.exited).toEqual({ code: 0, signal: null })

    const acknowledged = [...finished.map((r) => JSON.parse(r.body) as Task), ...raced.flatMap((r) => (r.body ? [r.body] : []))]
    const again = await startServer(dataDir)
    const stored = await list(again, token, '?limit=500')
    expect(stored).toEqual(expect.arrayContaining(acknowledged))
    expect(new Set(stored.map((t) => t.title)).size).toBe(stored.length) // nothing written twice
    expect(await stop(again)).toEqual({ code: 0, signal: null })
  }, 60_000)

  test('when requests are served, then each one is logged as exactly one JSON line carrying its request id, and no token is ever printed', async () => {
    const dataDir = freshDataDir()
    const user = newUser()
    const token = await tokenFor(user)
    const server = await startServer(dataDir)

    const requests: { path: string; init?: RequestInit; status: number; operation?: string; user?: string }[] = [
      { path: '/health', status: 200, operation: 'getHealth' },
      {
        path: '/api/tasks',
        init: { method: 'POST', headers: authJson(token), body: JSON.stringify({ title: 'logged' }) },
        status: 201,
        operation: 'createMyTask',
        user,
      },
      { path: `/api/${user}/tasks?limit=5`, init: { headers: authJson(token) }, status: 200, operation: 'listTasks', user },
      { path: '/api/tasks', init: { headers: { Authorization: `Bearer ${token}x` } }, status: 401, operation: 'listMyTasks' },
      { path: '/no/such/route', init: { headers: { Authorization: `Bearer ${token}` } }, status: 404 },
    ]
    const ids: string[] = []
    for (const { path, init, status, operation, user: loggedUser } of requests) {
      const id = `process-test-${randomUUID()}`
      const response = await fetch(`${server.url}${path}`, { ...init, headers: { ...(init?.headers as object), 'X-Request-Id': id } })
      expect(response.status).toBe(status)
      expect(response.headers.get('x-request-id')).toBe(id)
      await response.arrayBuffer()
      const line = await server.waitForLog((l) => l.req?.id === id)
      expect(line).toMatchObject({ level: 30, req: { id, method: init?.method ?? 'GET' }, res: { status } })
      expect(line.req?.url).toBe(path)
      expect(typeof line.time).toBe('number')
      if (operation) expect(line.operation).toBe(operation)
      if (loggedUser) expect(line.user_id).toBe(loggedUser)
      ids.push(id)
    }
    // Without an X-Request-Id, the server makes one up, returns it and logs it.
    const anonymous = await fetch(`${server.url}/health`)
    const generated = anonymous.headers.get('x-request-id') ?? ''
    expect(generated).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
    await server.waitForLog((l) => l.req?.id === generated)
    ids.push(generated)

    expect(await stop(server)).toEqual({ code: 0, signal: null })
    for (const id of ids) expect(server.logs.filter((l) => l.req?.id === id || JSON.stringify(l).includes(id))).toHaveLength(1)
    const everything = server.output.stdout + server.output.stderr
    expect(everything).not.toContain(token)
    expect(everything).not.toContain(token.split('.')[2])
    expect(everything).not.toMatch(/authorization|bearer/i)
    expect(server.output.stderr).toBe('')
  }, 60_000)

  test('when a client gives up while its request waits on the database, then the request is still logged once, as aborted', async () => {
    const user = newUser()
    const token = await tokenFor(user)
    const server = await startServer(freshDataDir(), { DATABASE_URL: testDatabaseUrl() })
    const created = await post(server, token, { title: 'locked' })
    const { id } = (await created.json()) as Task
    const sql = connect(testDatabaseUrl(), { max: 2 })
    let unlock = () => {}
    const locked = new Promise<void>((resolve) => {
      void sql.begin(async (tx) => {
        await tx`select id from tasks where id = ${id} for update`
        resolve()
        await new Promise<void>((release) => {
          unlock = release
        })
      })
    })
    try {
      await locked
      // The PATCH waits on the row lock; the client hangs up meanwhile, then the lock goes.
      const requestId = `aborted-${randomUUID()}`
      const patch = request(new URL(`/api/tasks/${id}`, server.url), {
        method: 'PATCH',
        agent: false,
        headers: { ...authJson(token), 'X-Request-Id': requestId },
      })
      patch.once('error', () => {})
      patch.end(JSON.stringify({ title: 'changed' }))
      const waiting = async () =>
        (await sql`select count(*)::int as n from pg_locks where not granted and pid <> pg_backend_pid()`)[0]?.n > 0
      while (!(await waiting())) await new Promise((resolve) => setTimeout(resolve, 50))
      patch.destroy()
      await new Promise((resolve) => setTimeout(resolve, 100)) // the server sees the connection close first
      unlock()
      const line = await server.waitForLog((l) => l.req?.id === requestId)
      expect(line).toMatchObject({ level: 40, aborted: true, operation: 'updateMyTask', user_id: user, req: { method: 'PATCH' } })
    } finally {
      unlock()
      await sql.end()
    }
    expect(await stop(server)).toEqual({ code: 0, signal: null })
    expect(server.logs.filter((l) => l.req?.id?.startsWith('aborted-'))).toHaveLength(1)
  }, 60_000)

  test('when no auth is configured in development, then it creates and announces a secret under DATA_DIR, and `scripts/token.ts` mints tokens it accepts', async () => {
    const dataDir = freshDataDir()
    const noAuth = { BETTER_AUTH_SECRET: '', BETTER_AUTH_JWKS_URL: '' }
    const server = await startServer(dataDir, noAuth)
    const file = join(dataDir, 'auth-secret')
    const announced = server.logs.find((l) => l.msg?.startsWith('created a development JWT secret'))
    expect(announced).toMatchObject({ level: 40, file })
    expect(announced?.msg).toContain('npm run token -- <user-id>')
    expect(statSync(file).mode & 0o777).toBe(0o600)

    const user = newUser()
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/token.ts', user], {
      cwd: project,
      env: environment(dataDir, noAuth),
    })
    const token = stdout.trim()
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/)
    const created = await post(server, token, { title: 'with a development token' })
    expect(created.status).toBe(201)
    expect(await created.json()).toMatchObject({ user_id: user })
    // The development secret is really the one in use: a token signed with another secret is refused.
    expect((await post(server, await tokenFor(user), { title: 'x' })).status).toBe(401)
    expect(await stop(server)).toEqual({ code: 0, signal: null })

    // A restart keeps the secret, so tokens already handed out stay valid.
    const again = await startServer(dataDir, noAuth)
    expect(again.logs.find((l) => l.msg?.startsWith('using a development JWT secret'))).toMatchObject({ level: 40, file })
    expect((await list(again, token)).map((t) => t.title)).toEqual(['with a development token'])
    expect(await stop(again)).toEqual({ code: 0, signal: null })
  }, 60_000)

  test('when NODE_ENV=production has no auth configuration, then it refuses to start with one line naming both variables', async () => {
    const dataDir = join(scratch, `never-${randomUUID()}`)
    const refused = launch(environment(dataDir, { NODE_ENV: 'production', BETTER_AUTH_SECRET: '', BETTER_AUTH_JWKS_URL: '' }))
    expect(await refused.exited).toEqual({ code: 1, signal: null })
    const lines = refused.output.stderr.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain('BETTER_AUTH_SECRET')
    expect(lines[0]).toContain('BETTER_AUTH_JWKS_URL')
    expect(refused.output.stdout).toBe('')
    expect(existsSync(dataDir)).toBe(false) // nothing was created, no PostgreSQL was started
  }, 30_000)

  test.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['LOG_LEVEL', 'loud'],
    ['CORS_ORIGINS', 'localhost:3000'],
    ['DATABASE_URL', 'mysql://localhost/todo'],
    ['WORKERS', 'many'],
  ])(
    'when %s=%s, then it refuses to start with one line naming the variable',
    async (name, value) => {
      const dataDir = join(scratch, `never-${randomUUID()}`)
      const refused = launch(environment(dataDir, { [name]: value }))
      expect(await refused.exited).toEqual({ code: 1, signal: null })
      const lines = refused.output.stderr.trim().split('\n')
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(new RegExp(`^todo-api: ${name} `))
      expect(refused.output.stdout).toBe('')
      expect(existsSync(dataDir)).toBe(false)
    },
    30_000,
  )

  test('when the server was SIGKILLed and left its PostgreSQL running, then the next start reuses it, and a clean stop leaves no PostgreSQL behind', async () => {
    const dataDir = freshDataDir()
    const token = await tokenFor(newUser())
    const killed = await startServer(dataDir)
    expect((await post(killed, token, { title: 'before the kill' })).status).toBe(201)
    const postmaster = postmasterPid(dataDir)
    killed.child.kill('SIGKILL')
    expect(await killed.exited).toEqual({ code: null, signal: 'SIGKILL' })
    expect(postmaster !== undefined && isRunning(postmaster)).toBe(true) // the stale server the next start must deal with

    const next = await startServer(dataDir)
    expect(next.logs.find((l) => l.msg?.startsWith('using the embedded PostgreSQL that is already running'))).toMatchObject({
      shared: false,
    })
    expect(postmasterPid(dataDir)).toBe(postmaster)
    expect((await list(next, token)).map((t) => t.title)).toEqual(['before the kill'])

    expect(await stop(next)).toEqual({ code: 0, signal: null })
    expect(next.logs.map((l) => l.msg)).toContain('stopped the embedded PostgreSQL')
    expect(existsSync(join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false)
    expect(await until(() => !isRunning(postmaster as number), 5_000)).toBe(true)
  }, 60_000)

  test('when the server and its PostgreSQL were both SIGKILLed, then the next start recovers the data, and a clean stop leaves no PostgreSQL behind', async () => {
    const dataDir = freshDataDir()
    const token = await tokenFor(newUser())
    const crashed = await startServer(dataDir)
    expect((await post(crashed, token, { title: 'before the crash' })).status).toBe(201)
    const postmaster = postmasterPid(dataDir) as number
    crashed.child.kill('SIGKILL')
    process.kill(postmaster, 'SIGKILL')
    await crashed.exited
    // Wait until the pid is really gone (here, an orphan's zombie is reaped only every few seconds).
    expect(await until(() => !exists(postmaster), 10_000)).toBe(true)
    expect(existsSync(join(dataDir, 'postgres', 'postmaster.pid'))).toBe(true) // stale lock file left behind

    const next = await startServer(dataDir)
    expect(next.logs.map((l) => l.msg)).toContain('started the embedded PostgreSQL')
    expect((await list(next, token)).map((t) => t.title)).toEqual(['before the crash'])
    const restarted = postmasterPid(dataDir) as number
    expect(await stop(next)).toEqual({ code: 0, signal: null })
    expect(existsSync(join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false)
    expect(await until(() => !isRunning(restarted), 5_000)).toBe(true)
  }, 60_000)
})

describe('several processes (WORKERS)', () => {
  test('when WORKERS=2, then two worker processes share the port, and SIGTERM stops them all once their in-flight writes are done', async () => {
    const dataDir = freshDataDir()
    const token = await tokenFor(newUser())
    const server = await startServer(dataDir, { WORKERS: '2' })
    expect(server.logs.find((l) => l.msg?.startsWith('listening on'))).toMatchObject({ workers: 2 })

    // Six writes on six connections, which the primary deals out to the workers in turn.
    const writes = Array.from({ length: 6 }, (_, i) => slowPost(server, token, { title: `write ${i}` }))
    await Promise.all(writes.map((w) => w.continued))
    server.child.kill('SIGTERM')
    await server.waitForLog((l) => l.msg === 'shutting down')
    for (const write of writes) write.sendBody()
    expect((await Promise.all(writes.map((w) => w.response))).map((r) => r.status)).toEqual(writes.map(() => 201))
    expect(await server.exited).toEqual({ code: 0, signal: null })
    expect(server.logs.map((l) => l.msg)).toEqual(expect.arrayContaining(['stopped the embedded PostgreSQL', 'stopped']))

    const servedBy = new Set(server.logs.filter((l) => l.operation === 'createMyTask').map((l) => l.pid as number))
    expect(servedBy.size).toBe(2)
    expect(servedBy.has(server.child.pid as number)).toBe(false)
    for (const pid of servedBy) expect(await until(() => !isRunning(pid), 5_000)).toBe(true)
  }, 60_000)

  test('when a worker dies, then the primary starts another and the API keeps answering', async () => {
    const server = await startServer(freshDataDir(), { WORKERS: '2' })
    const token = await tokenFor(newUser())
    expect((await post(server, token, { title: 'before' })).status).toBe(201)
    const victim = (await server.waitForLog((l) => l.operation === 'createMyTask')).pid as number
    process.kill(victim, 'SIGKILL')
    await server.waitForLog((l) => l.msg === 'a worker died; starting another' && l.pid === server.child.pid)
    for (let i = 0; i < 4; i++) expect(await probe(server.url)).toBe('HTTP 200')
    expect(await stop(server)).toEqual({ code: 0, signal: null })
  }, 60_000)

  test('when WORKERS=2, then a write on either worker reaches the streams on both, each reminder comes once, and SIGTERM ends open streams at once', async () => {
    const server = await startServer(freshDataDir(), { WORKERS: '2' })
    const token = await tokenFor(newUser())
    // Connections are dealt to the workers in turn: one stream on each.
    const client = { fetch: (path: string, init?: RequestInit) => fetch(`${server.url}${path}`, init) }
    const streams = [await openEvents(client, token), await openEvents(client, token)]

    const past = '2020-01-01T00:00:00.000Z' // due before any process ran: delivered at once
    const created: Task[] = []
    for (let i = 0; i < 6; i++) created.push((await (await post(server, token, { title: `task ${i}`, remind_at: past })).json()) as Task)
    for (const stream of streams) {
      await stream.until((events) => events.filter((e) => e.event === 'reminder').length >= 6 && events.length >= 12, 10_000)
    }
    const ids = created.map((t) => t.id)
    for (const stream of streams) {
      expect(stream.events.filter((e) => e.event === 'task.created').map((e) => JSON.parse(e.data).id)).toEqual(ids)
      // Both workers look for due reminders every second; each task's reminder came once.
      expect(
        stream.events
          .filter((e) => e.event === 'reminder')
          .map((e) => JSON.parse(e.data).id)
          .sort(),
      ).toEqual([...ids].sort())
    }
    const servedBy = new Set(server.logs.filter((l) => l.operation === 'createMyTask').map((l) => l.pid as number))
    expect(servedBy.size).toBe(2)

    const stopping = Date.now()
    server.child.kill('SIGTERM')
    await Promise.all(streams.map((s) => s.ended))
    expect(await server.exited).toEqual({ code: 0, signal: null })
    // Well before the 10 s after which open connections would be cut regardless.
    expect(Date.now() - stopping).toBeLessThan(8000)
  }, 60_000)

  test('when started as production runs it (npm start), then it builds once and serves from plain JavaScript in dist/, with no TypeScript loader', async () => {
    const dataDir = freshDataDir()
    const env = environment(dataDir, { NODE_ENV: 'production', WORKERS: '2' })
    const npm = spawn('npm', ['start'], { cwd: project, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    npm.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
    })
    const exited = new Promise((resolve) => npm.once('exit', resolve))
    try {
      expect(await until(() => /"msg":"listening on/.test(stdout), 30_000)).toBe(true)
      const port = Number(/"port":(\d+)/.exec(stdout.split('\n').find((l) => l.includes('"msg":"listening on')) ?? '')?.[1])
      const token = await tokenFor(newUser())
      const created = await fetch(`http://127.0.0.1:${port}/api/tasks`, {
        method: 'POST',
        headers: authJson(token),
        body: '{"title":"built"}',
      })
      expect(created.status).toBe(201)
      expect(await until(() => stdout.includes('"operation":"createMyTask"'), 5_000)).toBe(true)
      const worker = Number(/"pid":(\d+)[^\n]*"operation":"createMyTask"/.exec(stdout)?.[1])
      const command = readFileSync(`/proc/${worker}/cmdline`, 'utf8').split('\0')
      expect(command.filter(Boolean).join(' ')).toMatch(/dist\/server\.js$/)
      expect(command.join(' ')).not.toMatch(/tsx/)
      expect(stdout).not.toContain('#token=') // no demo link in production
    } finally {
      process.kill(-(npm.pid as number), 'SIGTERM') // the whole group, as a terminal's Ctrl-C would
      await exited
    }
    expect(await until(() => stdout.includes('"msg":"stopped"'), 10_000)).toBe(true)
  }, 90_000)
})

// ---------------------------------------------------------------------------------------------

interface Task {
  id: number
  title: string
  [key: string]: unknown
}

function freshDataDir(): string {
  const dir = mkdtempSync(join(scratch, 'data-'))
  chmodSync(dir, 0o755)
  dataDirs.add(dir)
  return dir
}

/** Every variable the server reads, set explicitly: neither jest's environment nor a developer's .env leaks in. */
function environment(dataDir: string, overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: '',
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: '',
    NEON_DB_URL: '',
    DATA_DIR: dataDir,
    BETTER_AUTH_SECRET: secret,
    BETTER_AUTH_JWKS_URL: '',
    JWT_ISSUER: '',
    JWT_AUDIENCE: '',
    JWT_USER_CLAIM: '',
    CORS_ORIGINS: 'http://localhost:3000',
    LOG_LEVEL: 'info',
    WORKERS: '',
    ...overrides,
  }
}

function launch(env: NodeJS.ProcessEnv): Launched {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'] })
  const logs: LogLine[] = []
  const output = { stdout: '', stderr: '' }
  const listeners = new Set<() => void>()
  const notify = () => {
    for (const listener of listeners) listener()
  }
  let partial = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    output.stdout += chunk
    const lines = (partial + chunk).split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines.filter(Boolean)) {
      try {
        logs.push(JSON.parse(line) as LogLine)
      } catch {
        logs.push({ msg: `NOT JSON: ${line}`, level: -1 })
      }
    }
    notify()
  })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    output.stderr += chunk
  })
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  let done: Exit | undefined
  void exited.then((exit) => {
    done = exit
    notify()
  })
  const dump = () => `pid ${child.pid}\n--- stdout\n${output.stdout}\n--- stderr\n${output.stderr}`
  const launched: Launched = {
    child,
    logs,
    output,
    exited,
    waitForLog(predicate, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = logs.find(predicate)
          if (found || done) {
            clearTimeout(timer)
            listeners.delete(check)
            if (found) resolve(found)
            else reject(new Error(`the process exited (${JSON.stringify(done)}) before logging what was awaited\n${dump()}`))
          }
        }
        const timer = setTimeout(() => {
          listeners.delete(check)
          reject(new Error(`no such log line within ${timeoutMs} ms\n${dump()}`))
        }, timeoutMs)
        listeners.add(check)
        check()
      })
    },
  }
  children.add(launched)
  return launched
}

async function startServer(dataDir: string, overrides: Record<string, string> = {}): Promise<ServerProcess> {
  const launched = launch(environment(dataDir, overrides))
  const listening = await launched.waitForLog((l) => typeof l.port === 'number' && l.msg?.startsWith('listening on') === true, 30_000)
  expect(launched.logs.filter((l) => l.level === -1)).toEqual([]) // stdout is JSON lines only
  return Object.assign(launched, { url: `http://127.0.0.1:${listening.port}`, dataDir })
}

function stop(server: Launched, signal: NodeJS.Signals = 'SIGTERM'): Promise<Exit> {
  server.child.kill(signal)
  return server.exited
}

function authJson(token: string): Record<string, string> {
  return { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }
}

function post(server: ServerProcess, token: string, body: unknown): Promise<Response> {
  return fetch(`${server.url}/api/tasks`, { method: 'POST', headers: authJson(token), body: JSON.stringify(body) })
}

async function list(server: ServerProcess, token: string, query = ''): Promise<Task[]> {
  const response = await fetch(`${server.url}/api/tasks${query}`, { headers: authJson(token) })
  expect(response.status).toBe(200)
  return (await response.json()) as Task[]
}

/** A POST whose body is only sent when asked: `continued` resolves once the server has read its headers. */
function slowPost(server: ServerProcess, token: string, body: unknown) {
  const payload = JSON.stringify(body)
  const req = request(new URL('/api/tasks', server.url), {
    method: 'POST',
    agent: false,
    headers: { ...authJson(token), 'Content-Length': Buffer.byteLength(payload), Expect: '100-continue' },
  })
  const continued = new Promise<void>((resolve, reject) => {
    req.once('continue', resolve).once('error', reject)
  })
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.once('error', reject).once('response', (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk
      })
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
  })
  continued.catch(() => {})
  response.catch(() => {})
  req.flushHeaders()
  return { continued, response, sendBody: () => req.end(payload) }
}

/** A request on a new connection: "HTTP <status>", or the connection error's code. */
function probe(url: string): Promise<string> {
  return new Promise((resolve) => {
    const req = request(new URL('/health', url), { agent: false }, (res) => {
      res.resume()
      resolve(`HTTP ${res.statusCode}`)
    })
    req.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message))
    req.end()
  })
}

function postmasterPid(dataDir: string): number | undefined {
  const file = join(dataDir, 'postgres', 'postmaster.pid')
  if (!existsSync(file)) return undefined
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0])
  return Number.isInteger(pid) && pid > 0 ? pid : undefined
}

/** The pid exists at all (a zombie, which this VM's init reaps only every few seconds, included). */
function exists(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The process exists and has not exited (a zombie is not running). */
function isRunning(pid: number): boolean {
  if (!exists(pid)) return false
  if (!existsSync('/proc/self/stat')) return true
  try {
    return !/^\d+ \(.*\) Z /s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

async function until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return true
}

/** Clean-up for a failed test: a fast shutdown (SIGINT) of a PostgreSQL still running on the directory. */
async function stopPostgresOf(dataDir: string): Promise<void> {
  const pid = postmasterPid(dataDir)
  if (pid === undefined || !isRunning(pid)) return
  process.kill(pid, 'SIGINT')
  if (!(await until(() => !isRunning(pid), 15_000))) process.kill(pid, 'SIGKILL')
}
