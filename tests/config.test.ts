// parseConfig: every variable's defaults and every way a value can be refused, with a message that
// names the variable (start-up prints it as one line).
import { availableParallelism } from 'node:os'
import { resolve } from 'node:path'
import { describe, expect, test } from '@jest/globals'
import { ConfigError, parseConfig } from '../src/config.js'

const secret = 'x'.repeat(32)

/** The ConfigError parseConfig throws for the environment (fails the test when it does not throw one). */
function refusal(env: Record<string, string | undefined>): ConfigError {
  try {
    parseConfig(env)
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    return error as ConfigError
  }
  throw new Error(`parseConfig accepted ${JSON.stringify(env)}`)
}

describe('defaults', () => {
  test('when the environment is empty, then every default applies', () => {
    expect(parseConfig({})).toEqual({
      env: 'development',
      port: 8000,
      host: undefined,
      databaseUrl: undefined,
      databaseDirectUrl: undefined,
      databasePrepare: true,
      dataDir: resolve('.data'),
      auth: { secret: undefined, jwksUrl: undefined, issuer: undefined, audience: undefined, userClaim: 'sub' },
      corsOrigins: ['http://localhost:3000'],
      logLevel: 'info',
      workers: 1,
      validateResponses: true,
    })
  })

  test('when variables are blank or whitespace, then they count as unset', () => {
    const blank = [
      'PORT',
      'HOST',
      'NODE_ENV',
      'LOG_LEVEL',
      'DATABASE_URL',
      'NEON_DB_URL',
      'DATABASE_DIRECT_URL',
      'DATABASE_PREPARE',
      'BETTER_AUTH_SECRET',
      'BETTER_AUTH_JWKS_URL',
    ]
    expect(parseConfig(Object.fromEntries(blank.map((name, i) => [name, i % 2 ? '' : '   '])))).toEqual(parseConfig({}))
  })

  test('when the configuration is parsed, then it is frozen', () => {
    const config = parseConfig({})
    expect(Object.isFrozen(config)).toBe(true)
    expect(Object.isFrozen(config.auth)).toBe(true)
  })

  test('when every variable is set, then each is read', () => {
    const config = parseConfig({
      NODE_ENV: 'test',
      PORT: '3001',
      HOST: '127.0.0.1',
      DATA_DIR: '/tmp/todo-data',
      DATABASE_URL: 'postgresql://u:p@db.example.com:5432/todo?sslmode=require',
      DATABASE_DIRECT_URL: 'postgresql://u:p@direct.example.com:5432/todo?sslmode=require',
      DATABASE_PREPARE: 'false',
      BETTER_AUTH_SECRET: ` ${secret} `,
      BETTER_AUTH_JWKS_URL: 'https://auth.example.com/api/auth/jwks',
      JWT_ISSUER: 'https://auth.example.com',
      JWT_AUDIENCE: ' https://auth.example.com , todo-api ,, ',
      JWT_USER_CLAIM: 'uid',
      CORS_ORIGINS: 'https://app.example.com, http://localhost:5173',
      LOG_LEVEL: 'debug',
    })
    expect(config).toEqual({
      env: 'test',
      port: 3001,
      host: '127.0.0.1',
      databaseUrl: 'postgresql://u:p@db.example.com:5432/todo?sslmode=require',
      databaseDirectUrl: 'postgresql://u:p@direct.example.com:5432/todo?sslmode=require',
      databasePrepare: false,
      dataDir: '/tmp/todo-data',
      auth: {
        secret,
        jwksUrl: new URL('https://auth.example.com/api/auth/jwks'),
        issuer: 'https://auth.example.com',
        audience: ['https://auth.example.com', 'todo-api'],
        userClaim: 'uid',
      },
      corsOrigins: ['https://app.example.com', 'http://localhost:5173'],
      logLevel: 'debug',
      workers: 1,
      validateResponses: true,
    })
  })

  test('when CORS_ORIGINS is set but empty, then no origin is allowed', () => {
    expect(parseConfig({ CORS_ORIGINS: '' }).corsOrigins).toEqual([])
  })

  test.each(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])('when LOG_LEVEL is %s, then it is accepted', (level) => {
    expect(parseConfig({ LOG_LEVEL: level }).logLevel).toBe(level)
  })

  test.each(['0', '1', '65535'])('when PORT is %s, then it is accepted', (port) => {
    expect(parseConfig({ PORT: port }).port).toBe(Number(port))
  })
})

describe('the database URL', () => {
  const neon = 'postgres://neon:pw@ep-cool-1.eu-central-1.aws.neon.tech/neondb?sslmode=require'
  const local = 'postgres://u:p@localhost:5432/todo'

  test('when only NEON_DB_URL is set, then it is used', () => {
    expect(parseConfig({ NEON_DB_URL: neon }).databaseUrl).toBe(neon)
  })

  test('when DATABASE_URL is blank, then NEON_DB_URL is used', () => {
    expect(parseConfig({ DATABASE_URL: ' ', NEON_DB_URL: neon }).databaseUrl).toBe(neon)
  })

  test('when both are set, then DATABASE_URL wins', () => {
    expect(parseConfig({ DATABASE_URL: local, NEON_DB_URL: neon }).databaseUrl).toBe(local)
  })

  test('when neither is set, then the embedded PostgreSQL is meant (undefined)', () => {
    expect(parseConfig({}).databaseUrl).toBeUndefined()
  })
})

describe('behind a connection pooler', () => {
  const pooled = 'postgres://neon:pw@ep-cool-1-pooler.eu-central-1.aws.neon.tech/neondb?sslmode=require'
  const direct = 'postgres://neon:pw@ep-cool-1.eu-central-1.aws.neon.tech/neondb?sslmode=require'

  test.each([
    ['true', true],
    ['1', true],
    [' false ', false],
    ['0', false],
  ])('when DATABASE_PREPARE is "%s", then databasePrepare is %s', (value, prepare) => {
    expect(parseConfig({ DATABASE_PREPARE: value }).databasePrepare).toBe(prepare)
  })

  test('when DATABASE_DIRECT_URL is set beside DATABASE_URL, then both are kept: the pool on one, migrations on the other', () => {
    const config = parseConfig({ DATABASE_URL: pooled, DATABASE_DIRECT_URL: direct, DATABASE_PREPARE: 'false' })
    expect(config).toMatchObject({ databaseUrl: pooled, databaseDirectUrl: direct, databasePrepare: false })
  })

  test('when DATABASE_DIRECT_URL is set beside NEON_DB_URL, then it is accepted too', () => {
    expect(parseConfig({ NEON_DB_URL: pooled, DATABASE_DIRECT_URL: direct }).databaseDirectUrl).toBe(direct)
  })

  test('when DATABASE_DIRECT_URL is set without a DATABASE_URL, then it is refused (the embedded PostgreSQL would be another database)', () => {
    expect(refusal({ DATABASE_DIRECT_URL: direct }).message).toBe(
      'DATABASE_DIRECT_URL needs DATABASE_URL (or NEON_DB_URL): it is a second way into that same database.',
    )
  })
})

describe('invalid values name their variable', () => {
  test.each([
    ['PORT', 'abc'],
    ['PORT', '-1'],
    ['PORT', '65536'],
    ['PORT', '80.5'],
    ['PORT', '8e3'],
    ['PORT', '0x50'],
    ['LOG_LEVEL', 'verbose'],
    ['LOG_LEVEL', 'INFO'],
    ['NODE_ENV', 'staging'],
    ['NODE_ENV', 'prod'],
    ['CORS_ORIGINS', 'localhost:3000'],
    ['CORS_ORIGINS', 'http://localhost:3000/'],
    ['CORS_ORIGINS', 'https://app.example.com/path'],
    ['CORS_ORIGINS', 'https://app.example.com,*'],
    ['DATABASE_URL', 'mysql://u:p@localhost/todo'],
    ['DATABASE_URL', 'localhost:5432/todo'],
    ['DATABASE_URL', 'postgres://bad host/todo'],
    ['NEON_DB_URL', 'https://console.neon.tech/app/projects'],
    ['DATABASE_DIRECT_URL', 'mysql://u:p@localhost/todo'],
    ['DATABASE_DIRECT_URL', 'ep-cool-1.eu-central-1.aws.neon.tech/neondb'],
    ['DATABASE_PREPARE', 'yes'],
    ['DATABASE_PREPARE', 'TRUE'],
    ['DATABASE_PREPARE', 'off'],
    ['DATABASE_PREPARE', '2'],
    ['WORKERS', '0'],
    ['WORKERS', 'two'],
    ['WORKERS', '1.5'],
    ['WORKERS', 'AUTO'],
    ['BETTER_AUTH_JWKS_URL', 'not a url'],
    ['BETTER_AUTH_JWKS_URL', 'ftp://auth.example.com/jwks'],
    ['BETTER_AUTH_JWKS_URL', '/api/auth/jwks'],
    ['BETTER_AUTH_SECRET', 'x'.repeat(31)],
    ['BETTER_AUTH_SECRET', 'too-short'],
  ])('when %s is "%s", then a ConfigError names it', (name, value) => {
    const error = refusal({ [name]: value })
    expect(error.name).toBe('ConfigError')
    expect(error.message).toMatch(new RegExp(`^${name} `))
  })

  test('when the BETTER_AUTH_SECRET is padded to 32 characters with spaces, then it is still too short', () => {
    expect(refusal({ BETTER_AUTH_SECRET: ` ${'x'.repeat(30)} ` }).message).toMatch(/^BETTER_AUTH_SECRET must be at least 32 characters/)
  })

  test('when the secret is refused, then the message does not echo it', () => {
    expect(refusal({ BETTER_AUTH_SECRET: 'my-short-secret' }).message).not.toContain('my-short-secret')
  })

  test('when the value is refused, then the message shows what was given (non-secret variables)', () => {
    expect(refusal({ PORT: 'eighty' }).message).toBe('PORT must be an integer from 0 to 65535 (got "eighty").')
    expect(refusal({ LOG_LEVEL: 'loud' }).message).toBe(
      'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent (got "loud").',
    )
    expect(refusal({ DATABASE_PREPARE: 'no' }).message).toBe('DATABASE_PREPARE must be true, false, 1 or 0 (got "no").')
  })

  test('when DATABASE_URL is invalid, then it is refused even though NEON_DB_URL is valid', () => {
    expect(refusal({ DATABASE_URL: 'mysql://x', NEON_DB_URL: 'postgres://u@h/db' }).message).toMatch(/^DATABASE_URL /)
  })

  test('when a database URL is refused, then the message does not echo its password', () => {
    expect(refusal({ DATABASE_URL: 'mysql://admin:hunter2@db/todo' }).message).not.toContain('hunter2')
    expect(refusal({ DATABASE_URL: 'postgres://u@h/db', DATABASE_DIRECT_URL: 'mysql://admin:hunter2@db/todo' }).message).not.toContain(
      'hunter2',
    )
  })
})

describe('production', () => {
  test('when NODE_ENV=production has neither BETTER_AUTH_SECRET nor BETTER_AUTH_JWKS_URL, then start-up is refused naming both', () => {
    const { message } = refusal({ NODE_ENV: 'production', DATABASE_URL: 'postgres://u@h/db' })
    expect(message).toContain('NODE_ENV=production')
    expect(message).toContain('BETTER_AUTH_SECRET')
    expect(message).toContain('BETTER_AUTH_JWKS_URL')
  })

  test('when NODE_ENV=production has only issuer and audience, then it is still refused', () => {
    expect(refusal({ NODE_ENV: 'production', JWT_ISSUER: 'https://a.example.com', JWT_AUDIENCE: 'x' }).message).toContain(
      'NODE_ENV=production',
    )
  })

  test('when NODE_ENV=production has a secret, then it starts without response validation', () => {
    const config = parseConfig({ NODE_ENV: 'production', BETTER_AUTH_SECRET: secret })
    expect(config).toMatchObject({ env: 'production', validateResponses: false, auth: { secret } })
  })

  test('when NODE_ENV=production sets no WORKERS, then it runs one process per core; elsewhere one', () => {
    expect(parseConfig({ NODE_ENV: 'production', BETTER_AUTH_SECRET: secret }).workers).toBe(availableParallelism())
    expect(parseConfig({ NODE_ENV: 'development' }).workers).toBe(1)
  })

  test.each([
    ['1', 1],
    ['3', 3],
  ])('when WORKERS is %s, then that many processes serve, in production too', (value, workers) => {
    expect(parseConfig({ NODE_ENV: 'production', BETTER_AUTH_SECRET: secret, WORKERS: value }).workers).toBe(workers)
  })

  test('when WORKERS is auto, then it is the number of cores, in development too', () => {
    expect(parseConfig({ WORKERS: 'auto' }).workers).toBe(availableParallelism())
  })

  test('when NODE_ENV=production has a JWKS URL, then it starts', () => {
    const config = parseConfig({ NODE_ENV: 'production', BETTER_AUTH_JWKS_URL: 'https://auth.example.com/api/auth/jwks' })
    expect(config.auth.jwksUrl?.href).toBe('https://auth.example.com/api/auth/jwks')
    expect(config.auth.secret).toBeUndefined()
  })

  test('when NODE_ENV=production has a short secret, then the secret is what the message names', () => {
    expect(refusal({ NODE_ENV: 'production', BETTER_AUTH_SECRET: 'short' }).message).toMatch(/^BETTER_AUTH_SECRET /)
  })

  test.each(['development', 'test'])(
    'when NODE_ENV=%s has no auth configuration, then it starts (a development secret is made later)',
    (env) => {
      expect(parseConfig({ NODE_ENV: env }).auth).toMatchObject({ secret: undefined, jwksUrl: undefined })
    },
  )
})
