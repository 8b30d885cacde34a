import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { startEmbeddedPostgres } from '../../src/embedded-postgres.js'
import { migrate } from '../../src/migrate.js'

/**
 * One PostgreSQL for the whole run: TEST_DATABASE_URL when set, else an embedded one in a
 * temporary directory. Workers inherit its URL through the environment; test files isolate
 * themselves by creating their own users.
 */
export async function globalSetup(): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'todo-api-test-'))
  chmodSync(scratch, 0o755) // the embedded server runs as the postgres user when we are root
  process.env.TEST_SCRATCH_DIR = scratch
  process.env.TEST_CONTRACT_LOG_DIR = join(scratch, 'contract-log')
  let url = process.env.TEST_DATABASE_URL
  if (!url) {
    const embedded = await startEmbeddedPostgres(join(scratch, 'data'), pino({ level: 'warn' }))
    globalThis.__embedded = embedded
    url = embedded.url
  }
  await migrate(url)
  process.env.TEST_DB_URL = url
  globalThis.__scratch = () => rmSync(scratch, { recursive: true, force: true })
}

declare global {
  var __embedded: { stop(): Promise<void> } | undefined
  var __scratch: (() => void) | undefined
}
