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

/** A postgres.js pool; int8 ids come back as numbers (the contract caps them at 2^53 - 1), timestamps as ISO strings. */
export function connect(url: string, { connection, ...options }: postgres.Options<Record<string, postgres.PostgresType>> = {}): Sql {
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
    types: {
      bigint: { to: 20, from: [20], serialize: (n: number) => String(n), parse: (s: string) => Number(s) },
      // Timestamps come back as the API writes them (ISO 8601 in UTC, milliseconds), ±infinity as such.
      date: {
        to: 1184,
        from: [1082, 1114, 1184],
        // A string goes as written (PostgreSQL reads offsets and ±infinity itself).
        serialize: (x: Date | string) => (x instanceof Date ? x.toISOString() : x),
        parse: isoTimestamp,
      },
    },
    // UTC, so that timestamps arrive in the form isoTimestamp rewrites without parsing a date.
    connection: { application_name: 'todo-api', TimeZone: 'UTC', ...connection },
    ...options,
  })
}

// `2026-11-29 14:14:24.87+00` (a timestamptz in UTC, as PostgreSQL writes it) → `2026-11-29T14:14:24.870Z`;
// anything else (another zone, a year before 1 or after 9999) through Date.
// Checked with test() and cut at fixed positions: no match array and captures for every timestamp read,
// and as few pieces as can be (a list page reads about 60 timestamps; each piece is garbage).
const utcTimestamp = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?\+00$/
// What completes the time after its 1, 2 or 3 fractional digits (PostgreSQL drops trailing zeros).
const millisecondTails = ['', '00Z', '0Z', 'Z']
function isoTimestamp(text: string): string {
  if (text === 'infinity' || text === '-infinity') return text
  if (!utcTimestamp.test(text)) return new Date(text).toISOString()
  if (text.length === 22) return `${text.slice(0, 10)}T${text.slice(11, 19)}.000Z`
  const end = Math.min(text.length - 3, 23) // the time through its milliseconds, if more digits follow
  return `${text.slice(0, 10)}T${text.slice(11, end)}${millisecondTails[end - 20]}`
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

type PoolConfig = Pick<Config, 'databasePrepare' | 'databasePoolSize' | 'databaseStatementTimeout'>

/**
 * The pool an API process serves with: on the pool URL, with DATABASE_PREPARE, DATABASE_POOL_SIZE
 * connections, and DATABASE_STATEMENT_TIMEOUT, so that PostgreSQL cancels a query that would hold a
 * connection longer (migrations connect otherwise: theirs may take long).
 */
export function openPool(config: PoolConfig, poolUrl: string, options: postgres.Options<Record<string, postgres.PostgresType>> = {}): Sql {
  const timeout = config.databaseStatementTimeout
  return connect(poolUrl, {
    max: config.databasePoolSize,
    prepare: config.databasePrepare,
    // The timeout travels as a startup parameter, which a transaction pooler refuses (PgBouncer:
    // "unsupported startup parameter") or, told to ignore it, drops. Behind one (DATABASE_PREPARE=false)
    // it is not sent: there it is the database role's setting (see checkStatementTimeout).
    ...(timeout !== undefined && config.databasePrepare && { connection: { statement_timeout: timeout } }),
    ...options,
  })
}

/**
 * Behind a transaction pooler the API cannot set statement_timeout itself (see openPool): warns when
 * the pooler's server connections run without one, and says how to give them one.
 */
export async function checkStatementTimeout(config: PoolConfig, poolUrl: string, logger: Logger): Promise<void> {
  if (config.databasePrepare || config.databaseStatementTimeout === undefined) return
  const sql = openPool(config, poolUrl, { max: 1 })
  try {
    const [row] = await sql<{ timeout: string }[]>`select current_setting('statement_timeout') as timeout`
    if (row?.timeout === '0') {
      logger.warn(
        `DATABASE_STATEMENT_TIMEOUT is not sent through a transaction pooler (DATABASE_PREPARE=false), and the database role sets no statement_timeout: set one with ALTER ROLE <user> SET statement_timeout = '${config.databaseStatementTimeout}ms'`,
      )
    }
  } catch {
    // Only a check: a pool that cannot connect says so itself, with every request.
  } finally {
    await sql.end()
  }
}
