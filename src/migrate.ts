import { fileURLToPath } from 'node:url'
import shift from 'postgres-shift'
import { connect } from './db.js'

const folder = fileURLToPath(new URL('./migrations', import.meta.url))
// Any constant: it only has to be the same in every process of this API.
const lockKey = 7_311_208_442

/**
 * Runs the versioned migrations in src/migrations, forward only, in one transaction.
 * A session advisory lock on a one-connection pool keeps concurrent starts from colliding.
 */
export async function migrate(url: string, log: (name: string) => void = () => {}): Promise<void> {
  const sql = connect(url, { max: 1 })
  try {
    await sql`select pg_advisory_lock(${lockKey})`
    await shift({ sql, path: folder, before: ({ migration_id, name }) => log(`${migration_id} ${name}`) })
    await sql`select pg_advisory_unlock(${lockKey})`
  } finally {
    await sql.end()
  }
}
