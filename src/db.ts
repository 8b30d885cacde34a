import type { Logger } from 'pino'
import postgres from 'postgres'
import type { Config } from './config.js'
import { startEmbeddedPostgres } from './embedded-postgres.js'

export type Sql = postgres.Sql

export interface Database {
  /**
   * For session-level work (migrations, whose advisory lock a transaction pooler cannot carry):
   * DATABASE_DIRECT_URL when set, else `poolUrl`.
   */
  readonly url: string
  /** What the API's pools connect to (`openPool`): DATABASE_URL / NEON_DB_URL (possibly a transaction pooler), or the embedded server. */
  readonly poolUrl: string
  /** Stops an embedded server this process owns. */
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
    // postgres.js waits up to 20 s between reconnects by default; during an outage a request
    // should get its 503 within a second, not hang.
    backoff: (retries: number) => (0.5 + Math.random() / 2) * Math.min(0.05 * 2 ** retries, 1),
    onnotice: () => {},
    types: { bigint: { to: 20, from: [20], serialize: (n: number) => String(n), parse: (s: string) => Number(s) } },
    connection: { application_name: 'todo-api' },
    ...options,
  })
}

/** DATABASE_URL / NEON_DB_URL when set, else the embedded PostgreSQL under the data directory. */
export async function openDatabase(config: Config, logger: Logger): Promise<Database> {
  const embedded = config.databaseUrl === undefined ? await startEmbeddedPostgres(config.dataDir, logger) : undefined
  const poolUrl = config.databaseUrl ?? (embedded?.url as string)
  return {
    url: config.databaseDirectUrl ?? poolUrl,
    poolUrl,
    close: async () => embedded?.stop(),
  }
}

/** The pool an API process serves with: on the pool URL, with DATABASE_PREPARE. */
export function openPool(config: Pick<Config, 'databasePrepare'>, poolUrl: string): Sql {
  return connect(poolUrl, { prepare: config.databasePrepare })
}
