import { join } from 'node:path'
import shift from 'postgres-shift'
import { connect } from './db.js'
import { projectRoot } from './paths.js'

const folder = join(projectRoot, 'src/migrations')
// Any constant: it only has to be the same in every process of this API.
const lockKey = 7_311_208_442

/**
 * Runs the versioned migrations in src/migrations, forward only, in one transaction.
 * A session advisory lock on a one-connection pool keeps concurrent starts from colliding.
 */
export async function migrate(url: string, log: (name: string) => void = () => {}): Promise<void> {
  // A few statements, once: named prepared statements gain nothing here, and they would fail if
  // this URL went through a transaction pooler after all.
  const sql = connect(url, { max: 1, prepare: false })
  try {
    await sql`select pg_advisory_lock(${lockKey})`
    await shift({ sql, path: folder, before: ({ migration_id, name }) => log(`${migration_id} ${name}`) })
    await sql`select pg_advisory_unlock(${lockKey})`
  } finally {
    await sql.end()
  }
}
