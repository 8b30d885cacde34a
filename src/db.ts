import type { Logger } from 'pino'
import postgres from 'postgres'
import type { Config } from './config.js'
import { startEmbeddedPostgres } from './embedded-postgres.js'

export type Sql = postgres.Sql

export interface Database {
  readonly url: string
  readonly sql: Sql
  /** Ends the pool (letting running queries finish), then stops an embedded server this process owns. */
  close(): Promise<void>
}

/** A postgres.js pool; int8 ids come back as numbers (the contract caps them at 2^53 - 1). */
export function connect(url: string, options: postgres.Options<Record<string, postgres.PostgresType>> = {}): Sql {
  const target = new URL(url)
  // libpq's channel_binding is not a server setting; postgres.js would send it as one and fail.
  target.searchParams.delete('channel_binding')
  return postgres(target.toString(), {
    max: 10,
    idle_timeout: 60,
    connect_timeout: 10,
    onnotice: () => {},
    types: { bigint: { to: 20, from: [20], serialize: (n: number) => String(n), parse: (s: string) => Number(s) } },
    connection: { application_name: 'todo-api' },
    ...options,
  })
}

/** DATABASE_URL / NEON_DB_URL when set, else the embedded PostgreSQL under the data directory. */
export async function openDatabase(config: Config, logger: Logger): Promise<Database> {
  const embedded = config.databaseUrl === undefined ? await startEmbeddedPostgres(config.dataDir, logger) : undefined
  const url = config.databaseUrl ?? (embedded?.url as string)
  const sql = connect(url)
  return {
    url,
    sql,
    async close() {
      await sql.end({ timeout: 10 })
      await embedded?.stop()
    },
  }
}
