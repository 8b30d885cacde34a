// npm run migrate: applies the pending migrations of src/migrations (start-up does the same).
import { pino } from 'pino'
import { ConfigError, readConfig } from '../src/config.js'
import { openDatabase } from '../src/db.js'
import { migrate } from '../src/migrate.js'

try {
  const config = readConfig()
  const logger = pino({ level: config.logLevel })
  const database = await openDatabase(config, logger)
  try {
    await migrate(database.url, (m) => logger.info(`migration ${m}`))
    logger.info('migrations are up to date')
  } finally {
    await database.close()
  }
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  console.error(`todo-api: ${error.message}`)
  process.exit(1)
}
