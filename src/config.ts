import { existsSync } from 'node:fs'
import { isIP } from 'node:net'
import { availableParallelism } from 'node:os'
import { resolve } from 'node:path'

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
const environments = ['development', 'production', 'test'] as const

export type LogLevel = (typeof logLevels)[number]

/** At most `limit` requests per fixed window of `windowSeconds` (windows start at multiples of it since the epoch). */
export interface RateLimit {
  readonly limit: number
  readonly windowSeconds: number
}

export interface Config {
  readonly env: (typeof environments)[number]
  readonly port: number
  /** undefined listens on every interface. */
  readonly host: string | undefined
  /** undefined starts the embedded PostgreSQL under `dataDir`. */
  readonly databaseUrl: string | undefined
  /** A session (non-pooled) connection to the same database, for migrations; undefined uses `databaseUrl`. */
  readonly databaseDirectUrl: string | undefined
  /** postgres.js named prepared statements: false behind a transaction pooler (PgBouncer, Neon's pooled URLs). */
  readonly databasePrepare: boolean
  /** Connections per API process. */
  readonly databasePoolSize: number
  /** PostgreSQL's statement_timeout for the API's queries, in ms; undefined: none. */
  readonly databaseStatementTimeout: number | undefined
  readonly dataDir: string
  readonly auth: {
    readonly secret: string | undefined
    readonly jwksUrl: URL | undefined
    readonly issuer: string | undefined
    readonly audience: readonly string[] | undefined
    readonly userClaim: string
  }
  readonly corsOrigins: readonly string[]
  /** Express's 'trust proxy': whose X-Forwarded-For names the client (false: the peer is the client). */
  readonly trustProxy: boolean | number | readonly string[]
  readonly rateLimit: {
    /** undefined: off. */
    readonly perUser: RateLimit | undefined
    readonly perIp: RateLimit | undefined
    /** Client addresses never limited per IP: addresses, CIDRs, loopback, linklocal, uniquelocal. */
    readonly exempt: readonly string[]
  }
  readonly logLevel: LogLevel
  /** API processes (node:cluster workers); 1 serves from the main process itself. */
  readonly workers: number
  /** Response validation costs throughput; it is on everywhere but production. */
  readonly validateResponses: boolean
  /**
   * HTTP timeouts in milliseconds: the whole request (headers and body) and its headers alone, so that
   * a slow client cannot hold a connection; and how long an idle keep-alive connection stays open.
   */
  readonly timeouts: { readonly request: number; readonly headers: number; readonly keepAlive: number }
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

type Env = Record<string, string | undefined>

/** Parses the environment once; a bad value throws a ConfigError naming the variable. */
export function parseConfig(env: Env): Config {
  const nodeEnv = oneOf(env, 'NODE_ENV', environments, 'development')
  const secret = text(env, 'BETTER_AUTH_SECRET')
  if (secret !== undefined && secret.length < 32) {
    throw new ConfigError('BETTER_AUTH_SECRET must be at least 32 characters long (generate one with `openssl rand -base64 32`).')
  }
  const jwksUrl = url(env, 'BETTER_AUTH_JWKS_URL')
  const database = databaseUrl(env)
  const databaseDirectUrl = postgresUrl(env, 'DATABASE_DIRECT_URL')
  if (databaseDirectUrl !== undefined && database === undefined) {
    throw new ConfigError('DATABASE_DIRECT_URL needs DATABASE_URL (or NEON_DB_URL): it is a second way into that same database.')
  }
  if (nodeEnv === 'production' && secret === undefined && jwksUrl === undefined) {
    throw new ConfigError(
      'NODE_ENV=production needs BETTER_AUTH_SECRET or BETTER_AUTH_JWKS_URL: without one, no token could ever be verified.',
    )
  }
  return Object.freeze({
    env: nodeEnv,
    port: integer(env, 'PORT', 0, 65535, 8000),
    host: text(env, 'HOST'),
    databaseUrl: database,
    databaseDirectUrl,
    databasePrepare: boolean(env, 'DATABASE_PREPARE', true),
    databasePoolSize: integer(env, 'DATABASE_POOL_SIZE', 1, 1000, 10),
    databaseStatementTimeout: milliseconds(env, 'DATABASE_STATEMENT_TIMEOUT', '10s'),
    dataDir: resolve(text(env, 'DATA_DIR') ?? '.data'),
    auth: Object.freeze({
      secret,
      jwksUrl,
      issuer: text(env, 'JWT_ISSUER'),
      audience: list(env, 'JWT_AUDIENCE'),
      userClaim: text(env, 'JWT_USER_CLAIM') ?? 'sub',
    }),
    corsOrigins: origins(env, 'CORS_ORIGINS', 'http://localhost:3000'),
    trustProxy: trustProxy(env, 'TRUST_PROXY'),
    rateLimit: Object.freeze({
      perUser: rateLimit(env, 'RATE_LIMIT_PER_USER', '2000/10s'),
      perIp: rateLimit(env, 'RATE_LIMIT_PER_IP', '5000/10s'),
      exempt: exempt(env, 'RATE_LIMIT_EXEMPT', 'loopback'),
    }),
    logLevel: oneOf(env, 'LOG_LEVEL', logLevels, 'info'),
    workers: workers(env, 'WORKERS', nodeEnv === 'production' ? 'auto' : '1'),
    timeouts: timeouts(env),
    validateResponses: nodeEnv !== 'production',
  })
}

/** Reads `.env` (variables already set win), then parses the environment. */
export function readConfig(envFile = '.env'): Config {
  if (existsSync(envFile)) process.loadEnvFile(envFile)
  return parseConfig(process.env)
}

function text(env: Env, name: string): string | undefined {
  const value = env[name]?.trim()
  return value ? value : undefined
}

function oneOf<const T extends readonly string[]>(env: Env, name: string, allowed: T, fallback: T[number]): T[number] {
  const value = text(env, name)
  if (value === undefined) return fallback
  if (!allowed.includes(value)) throw new ConfigError(`${name} must be one of ${allowed.join(', ')} (got "${value}").`)
  return value
}

function integer(env: Env, name: string, min: number, max: number, fallback: number): number {
  const value = text(env, name)
  if (value === undefined) return fallback
  const n = Number(value)
  if (!/^\d+$/.test(value) || n < min || n > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max} (got "${value}").`)
  }
  return n
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const value = text(env, name)
  if (value === undefined) return fallback
  if (value === 'true' || value === '1') return true
  if (value === 'false' || value === '0') return false
  throw new ConfigError(`${name} must be true, false, 1 or 0 (got "${value}").`)
}

// `auto` is one process per core the machine (or its CPU quota) offers.
function workers(env: Env, name: string, fallback: string): number {
  const value = text(env, name) ?? fallback
  if (value === 'auto') return availableParallelism()
  const n = Number(value)
  if (!/^\d+$/.test(value) || n < 1 || n > 256)
    throw new ConfigError(`${name} must be "auto" or an integer from 1 to 256 (got "${value}").`)
  return n
}

function url(env: Env, name: string): URL | undefined {
  const value = text(env, name)
  if (value === undefined) return undefined
  const parsed = URL.canParse(value) ? new URL(value) : undefined
  if (parsed?.protocol !== 'http:' && parsed?.protocol !== 'https:') {
    throw new ConfigError(`${name} must be an http(s) URL (got "${value}").`)
  }
  return parsed
}

function list(env: Env, name: string): string[] | undefined {
  const items = text(env, name)
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  return items?.length ? items : undefined
}

function origins(env: Env, name: string, fallback: string): string[] {
  const items = env[name] === undefined ? [fallback] : (list(env, name) ?? [])
  for (const origin of items) {
    if (!URL.canParse(origin) || new URL(origin).origin !== origin) {
      throw new ConfigError(`${name} must be a comma-separated list of origins like https://app.example.com (got "${origin}").`)
    }
  }
  return items
}

// Headers get at most 10 s (a real client sends them in one packet). The keep-alive default outlasts
// the 60 s idle timeout of common load balancers (AWS ALB), which must close idle connections first:
// a server closing one the balancer is reusing makes a 502.
function timeouts(env: Env): Config['timeouts'] {
  const request = integer(env, 'REQUEST_TIMEOUT', 1, 3600, 30)
  return Object.freeze({
    request: request * 1000,
    headers: Math.min(10, request) * 1000,
    keepAlive: integer(env, 'KEEP_ALIVE_TIMEOUT', 1, 3600, 65) * 1000,
  })
}

function databaseUrl(env: Env): string | undefined {
  return postgresUrl(env, 'DATABASE_URL') ?? postgresUrl(env, 'NEON_DB_URL')
}

// The message never echoes the value: it would show the password.
function postgresUrl(env: Env, name: string): string | undefined {
  const value = text(env, name)
  if (value === undefined) return undefined
  if (!/^postgres(ql)?:\/\//.test(value) || !URL.canParse(value)) {
    throw new ConfigError(`${name} must be a postgres:// or postgresql:// URL.`)
  }
  return value
}

const units = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

// `10s`, `500ms`, `2m`, or bare milliseconds as PostgreSQL reads them; `0` or `off`: no timeout.
function milliseconds(env: Env, name: string, fallback: string): number | undefined {
  const value = text(env, name) ?? fallback
  if (value === 'off' || value === '0') return undefined
  const match = /^(\d+)(ms|s|m|h)?$/.exec(value)
  const ms = Number(match?.[1]) * units[(match?.[2] ?? 'ms') as keyof typeof units]
  if (!match || ms < 1 || ms > 86_400_000) {
    throw new ConfigError(`${name} must be a duration like 10s, 500ms or 2m (at most 24h), or off (got "${value}").`)
  }
  return ms
}

function rateLimit(env: Env, name: string, fallback: string): RateLimit | undefined {
  const value = text(env, name) ?? fallback
  if (value === 'off') return undefined
  const match = /^(\d+)\/(\d+)(s|m|h)$/.exec(value)
  const limit = Number(match?.[1])
  const windowSeconds = (Number(match?.[2]) * units[(match?.[3] ?? 's') as keyof typeof units]) / 1000
  if (!match || limit < 1 || limit > 1_000_000_000 || windowSeconds < 1 || windowSeconds > 86_400) {
    throw new ConfigError(`${name} must be off or <requests>/<window> like 2000/10s (window in s, m or h, at most 24h) (got "${value}").`)
  }
  return Object.freeze({ limit, windowSeconds })
}

// The values Express's 'trust proxy' takes, spelled as in its documentation.
function trustProxy(env: Env, name: string): Config['trustProxy'] {
  const value = text(env, name)
  if (value === undefined || value === 'false') return false
  if (value === 'true') return true
  if (/^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 255) return Number(value)
  return addresses(name, value, 'true, false, a hop count from 1 to 255, or')
}

function exempt(env: Env, name: string, fallback: string): string[] {
  const value = text(env, name) ?? fallback
  return value === 'none' ? [] : addresses(name, value, 'none or')
}

const namedRanges = ['loopback', 'linklocal', 'uniquelocal'] as const

// Addresses and CIDRs (with a prefix length, not a netmask), and the ranges Express names.
function addresses(name: string, value: string, alternatives: string): string[] {
  const items = value.split(',').map((s) => s.trim())
  for (const item of items) {
    const [address = '', bits, ...rest] = item.split('/')
    const family = isIP(address)
    const valid =
      (namedRanges as readonly string[]).includes(item) ||
      (family !== 0 && rest.length === 0 && (bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128))))
    if (!valid) {
      throw new ConfigError(
        `${name} must be ${alternatives} a comma-separated list of addresses, CIDRs (10.0.0.0/8), loopback, linklocal and uniquelocal (got "${value}").`,
      )
    }
  }
  return items
}
