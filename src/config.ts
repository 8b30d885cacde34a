import { existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { resolve } from 'node:path'

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
const environments = ['development', 'production', 'test'] as const

export type LogLevel = (typeof logLevels)[number]

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
  readonly dataDir: string
  readonly auth: {
    readonly secret: string | undefined
    readonly jwksUrl: URL | undefined
    readonly issuer: string | undefined
    readonly audience: readonly string[] | undefined
    readonly userClaim: string
  }
  readonly corsOrigins: readonly string[]
  readonly logLevel: LogLevel
  /** API processes (node:cluster workers); 1 serves from the main process itself. */
  readonly workers: number
  /** Response validation costs throughput; it is on everywhere but production. */
  readonly validateResponses: boolean
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
    dataDir: resolve(text(env, 'DATA_DIR') ?? '.data'),
    auth: Object.freeze({
      secret,
      jwksUrl,
      issuer: text(env, 'JWT_ISSUER'),
      audience: list(env, 'JWT_AUDIENCE'),
      userClaim: text(env, 'JWT_USER_CLAIM') ?? 'sub',
    }),
    corsOrigins: origins(env, 'CORS_ORIGINS', 'http://localhost:3000'),
    logLevel: oneOf(env, 'LOG_LEVEL', logLevels, 'info'),
    workers: workers(env, 'WORKERS', nodeEnv === 'production' ? 'auto' : '1'),
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
