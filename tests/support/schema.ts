import { randomUUID } from 'node:crypto'
import { connect } from '../../src/db.js'
import { migrate } from '../../src/migrate.js'
import { testDatabaseUrl } from './server.js'

export interface Schema {
  /** The test database's URL with this schema as its search_path. */
  readonly url: string
  drop(): Promise<void>
}

/**
 * A migrated schema of its own, for rows no other test file may touch: rate-limit counters are
 * keyed by client address, and every test's requests come from 127.0.0.1.
 */
export async function freshSchema(): Promise<Schema> {
  const name = `test_${randomUUID().replace(/-/g, '')}`
  const sql = connect(testDatabaseUrl(), { max: 1 })
  await sql`create schema ${sql(name)}`
  const url = new URL(testDatabaseUrl())
  url.searchParams.set('search_path', name)
  await migrate(url.toString())
  return {
    url: url.toString(),
    async drop() {
      await sql`drop schema ${sql(name)} cascade`
      await sql.end()
    },
  }
}
