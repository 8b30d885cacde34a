// A real PgBouncer (Debian's binary) in transaction-pooling mode in front of this test run's
// PostgreSQL: what Neon's pooled URLs are.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { connect as tcpConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { connect, type Sql } from '../../src/db.js'
import { freePort } from '../../src/embedded-postgres.js'

export const pgbouncerPath = process.env.PGBOUNCER_PATH ?? '/usr/sbin/pgbouncer'
export const havePgBouncer = existsSync(pgbouncerPath)

export interface PgBouncer {
  /** The target URL with host and port replaced by PgBouncer's. */
  readonly url: string
  /** The admin console (`show clients`, `show servers`, `show stats`…): simple protocol only, so end each query with `.simple()`. */
  readonly admin: Sql
  /** PgBouncer's own log so far (its stderr: connections, errors). */
  log(): string
  stop(): Promise<void>
}

export interface PgBouncerOptions {
  /** The PostgreSQL to pool; its user and password are the only login PgBouncer accepts. */
  target: string
  /** Server connections per user and database: small, so that clients share them. */
  poolSize: number
}

/** Starts PgBouncer on a free loopback port and resolves once it accepts connections. */
export async function startPgBouncer({ target, poolSize }: PgBouncerOptions): Promise<PgBouncer> {
  const server = new URL(target)
  const user = decodeURIComponent(server.username)
  const password = decodeURIComponent(server.password)
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'todo-api-pgbouncer-'))
  const quoted = (s: string) => `"${s.replaceAll('"', '""')}"`
  writeFileSync(join(dir, 'userlist.txt'), `${quoted(user)} ${quoted(password)}\n`)
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${server.hostname.replace(/^\[|\]$/g, '')} port=${server.port || 5432}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      // The password in auth_file is plain, so PgBouncer can answer PostgreSQL's SCRAM itself.
      'auth_type = scram-sha-256',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      `admin_users = ${user}`,
      'pool_mode = transaction',
      `default_pool_size = ${poolSize}`,
      'min_pool_size = 0',
      'reserve_pool_size = 0',
      'max_client_conn = 200',
      `pidfile = ${join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  )
  // PgBouncer refuses to run as root: as root, run it as the postgres user, which owns the files.
  const asPostgres = process.getuid?.() === 0 ? postgresIds() : {}
  if (asPostgres.uid !== undefined && asPostgres.gid !== undefined) {
    for (const name of ['', ...readdirSync(dir)]) chownSync(join(dir, name), asPostgres.uid, asPostgres.gid)
  }
  chmodSync(dir, 0o700)

  const child = spawn(pgbouncerPath, [join(dir, 'pgbouncer.ini')], { ...asPostgres, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (chunk) => {
    stderr += chunk
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const log = () => stderr
  try {
    await listening(port, child, log)
  } catch (error) {
    await stop(child, exited)
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
  const url = new URL(target)
  url.hostname = '127.0.0.1'
  url.port = String(port)
  const console = new URL(url)
  console.pathname = '/pgbouncer'
  const admin = connect(console.toString(), { max: 1, prepare: false, fetch_types: false })
  return {
    url: url.toString(),
    admin,
    log,
    async stop() {
      await admin.end({ timeout: 1 })
      await stop(child, exited)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

async function stop(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
  await exited
}

/** Polls the port until a TCP connection succeeds; fails when PgBouncer exits or 10 s pass. */
async function listening(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`PgBouncer exited (${child.exitCode ?? child.signalCode}) before listening:\n${log()}`)
    }
    if (await accepts(port)) return
    if (Date.now() > deadline) throw new Error(`PgBouncer did not listen on port ${port} within 10 s:\n${log()}`)
    await sleep(20)
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

function postgresIds(): { uid?: number; gid?: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim())
  return { uid: id('-u'), gid: id('-g') }
}
