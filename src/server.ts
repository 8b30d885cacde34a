import cluster, { type Worker } from 'node:cluster'
import { createVerifier, developmentSecret, mintToken } from './auth.js'
import { type Config, ConfigError, readConfig } from './config.js'
import { checkStatementTimeout, openDatabase, openPool } from './db.js'
import { createLogger, flushLogs } from './logger.js'
import { migrate } from './migrate.js'

// One process (WORKERS=1, the default in development) or a primary that prepares the database and
// then forks WORKERS processes sharing the port (node:cluster), each with its own pool.
let config: Config
try {
  config = readConfig()
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  console.error(`todo-api: ${error.message}`)
  process.exit(1)
}
const logger = createLogger(config)

if (cluster.isWorker) {
  const port = await serve(config, config.auth, config.databaseUrl as string)
  process.send?.({ listening: port })
} else {
  await primary(config)
}

/** Secret, database and migrations once; then serving, here or in the workers. */
async function primary(config: Config): Promise<void> {
  let auth = config.auth
  if (auth.secret === undefined && auth.jwksUrl === undefined) {
    const { secret, created } = developmentSecret(config.dataDir)
    auth = { ...auth, secret }
    logger.warn(
      { file: `${config.dataDir}/auth-secret` },
      `${created ? 'created' : 'using'} a development JWT secret; mint a token with: npm run token -- <user-id>`,
    )
  }
  const database = await openDatabase(config, logger)
  try {
    await migrate(database.url, (m) => logger.info(`migration ${m}`))
  } catch (error) {
    logger.fatal({ err: error }, 'start-up failed')
    await database.close()
    exit(1)
  }
  await checkStatementTimeout(config, database.poolUrl, logger)
  if (!config.databasePrepare && config.databaseDirectUrl === undefined) {
    logger.warn(
      'DATABASE_PREPARE=false says DATABASE_URL goes through a transaction pooler, where LISTEN does not work: set DATABASE_DIRECT_URL to a direct connection, or live updates will miss changes made by other processes',
    )
  }

  const port =
    config.workers === 1
      ? await serve(config, auth, database.poolUrl, () => database.close())
      : await fork(config, auth, database.poolUrl, () => database.close())
  logger.info(
    { port, ...(config.workers > 1 && { workers: config.workers }) },
    `listening on http://localhost:${port} (docs at http://localhost:${port}/docs)`,
  )
  // A newcomer clicks straight into the web page; the token rides in the fragment, which browsers never send.
  if (config.env !== 'production' && auth.secret !== undefined) {
    const token = await mintToken(auth, 'demo', '24h')
    logger.info({ user_id: 'demo' }, `web page for the demo user (token valid 24 h): http://localhost:${port}/#token=${token}`)
  }
}

/**
 * Serves the API from this process and resolves with its port; on SIGTERM/SIGINT it stops accepting,
 * finishes in-flight requests and closes the pool.
 */
async function serve(config: Config, auth: Config['auth'], databaseUrl: string, afterStop?: () => Promise<void>): Promise<number> {
  // Imported here, so that a primary that only forks workers never loads Express and the validator.
  const { createApp, createHttpServer } = await import('./app.js')
  const { createRateLimiter } = await import('./rate-limit.js')
  const { createEventHub } = await import('./events/hub.js')
  const { startEventWork } = await import('./events/worker.js')
  const sql = openPool(config, databaseUrl)
  const rateLimiter = createRateLimiter(sql, config, { logger })
  // LISTEN needs a session: the direct URL when the pool goes through a transaction pooler.
  const events = createEventHub({ sql, listenUrl: config.databaseDirectUrl ?? databaseUrl, logger })
  const eventWork = startEventWork(sql, logger, events.changed)
  const app = createApp({ sql, verify: createVerifier(auth), config, logger, rateLimiter, events })
  const server = createHttpServer(app, { config, logger })
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject).listen({ port: config.port, host: config.host }, resolve)
    })
  } catch (error) {
    logger.fatal({ err: error }, 'start-up failed')
    await Promise.all([events.close(), eventWork.stop(), rateLimiter.close()])
    await sql.end()
    await afterStop?.()
    exit(1)
  }
  onStop(async (signal) => {
    if (cluster.isPrimary) logger.info({ signal }, 'shutting down')
    const closed = new Promise((resolve) => server.close(resolve))
    server.closeIdleConnections()
    setTimeout(() => server.closeAllConnections(), 10_000).unref()
    // Open event streams would hold their connections: they end now (clients reconnect elsewhere).
    await Promise.all([events.close(), eventWork.stop()])
    server.closeIdleConnections()
    await closed
    await rateLimiter.close()
    await sql.end({ timeout: 10 })
    await afterStop?.()
    if (cluster.isPrimary) logger.info('stopped')
    exit(0)
  })
  const address = server.address()
  return typeof address === 'object' && address ? address.port : config.port
}

/** Forks the workers and resolves with their port once each listens; replaces one that crashes, until stopped. */
async function fork(config: Config, auth: Config['auth'], databaseUrl: string, afterStop: () => Promise<void>): Promise<number> {
  // Each worker reads the same configuration, plus what the primary settled: the database and the secret.
  // With PORT=0, cluster hands every worker the same port.
  const env = { DATABASE_URL: databaseUrl, ...(auth.secret !== undefined && { BETTER_AUTH_SECRET: auth.secret }) }
  let stopping = false
  const start = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const worker: Worker = cluster.fork(env)
      let listening = false
      worker.on('message', (message: { listening?: number }) => {
        if (message.listening === undefined) return
        listening = true
        resolve(message.listening)
      })
      worker.once('exit', (code, signal) => {
        if (!listening) return reject(new Error(`a worker exited during start-up (code ${code}, signal ${signal})`))
        // A clean exit is a worker that was told to stop (Ctrl-C reaches every process of the terminal).
        if (stopping || code === 0) return
        logger.error({ worker: worker.process.pid, code, signal }, 'a worker died; starting another')
        start().catch((error: unknown) => logger.error({ err: error }, 'could not replace the worker'))
      })
    })
  let ports: number[] = []
  try {
    ports = await Promise.all(Array.from({ length: config.workers }, start))
  } catch (error) {
    stopping = true
    logger.fatal({ err: error }, 'start-up failed')
    await Promise.all(workersOf().map(stopWorker))
    await afterStop()
    exit(1)
  }

  onStop(async (signal) => {
    stopping = true
    logger.info({ signal }, 'shutting down')
    await Promise.all(workersOf().map(stopWorker))
    await afterStop()
    logger.info('stopped')
    exit(0)
  })
  return ports[0] as number
}

const workersOf = () => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined)

function stopWorker(worker: Worker): Promise<void> {
  if (worker.isDead()) return Promise.resolve()
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
  worker.process.kill('SIGTERM')
  return exited
}

function onStop(stop: (signal: NodeJS.Signals) => Promise<void>): void {
  let stopping = false
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) return
    stopping = true
    stop(signal).catch((error: unknown) => {
      logger.fatal({ err: error }, 'shutdown failed')
      exit(1)
    })
  }
  process.on('SIGTERM', handler)
  process.on('SIGINT', handler)
}

/** Exits once the log destination has written everything it holds. */
function exit(code: number): never {
  flushLogs(logger)
  process.exit(code)
}
