import { createServer, type Server } from 'node:http'
import { pino } from 'pino'
import { createApp } from './app.js'
import { createVerifier, developmentSecret, mintToken } from './auth.js'
import { type Config, ConfigError, readConfig } from './config.js'
import { openDatabase } from './db.js'
import { migrate } from './migrate.js'

let config: Config
try {
  config = readConfig()
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  console.error(`todo-api: ${error.message}`)
  process.exit(1)
}

const logger = pino({ level: config.logLevel })
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
let server: Server | undefined
try {
  await migrate(database.url, (m) => logger.info(`migration ${m}`))
  const app = createApp({ sql: database.sql, verify: createVerifier(auth), config, logger })
  server = createServer(app)
  await new Promise<void>((resolve, reject) => {
    server?.once('error', reject).listen({ port: config.port, host: config.host }, resolve)
  })
} catch (error) {
  logger.fatal({ err: error }, 'start-up failed')
  await database.close()
  process.exit(1)
}
const address = server.address()
const port = typeof address === 'object' && address ? address.port : config.port
logger.info({ port }, `listening on http://localhost:${port} (docs at http://localhost:${port}/docs)`)
// A newcomer clicks straight into the web page; the token rides in the fragment, which browsers never send.
if (config.env !== 'production' && auth.secret !== undefined) {
  const token = await mintToken(auth, 'demo', '24h')
  logger.info({ user_id: 'demo' }, `web page for the demo user (token valid 24 h): http://localhost:${port}/#token=${token}`)
}

// Graceful stop: refuse new connections, let in-flight requests finish, then close the pool.
let stopping = false
const stop = (signal: NodeJS.Signals) => {
  if (stopping) return
  stopping = true
  logger.info({ signal }, 'shutting down')
  server?.close(async () => {
    await database.close()
    logger.info('stopped')
    process.exit(0)
  })
  server?.closeIdleConnections()
  setTimeout(() => server?.closeAllConnections(), 10_000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
