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
      databasePoolSize: 10,
      databaseStatementTimeout: 10_000,
      dataDir: resolve('.data'),
      auth: { secret: undefined, jwksUrl: undefined, issuer: undefined, audience: undefined, userClaim: 'sub' },
      corsOrigins: ['http://localhost:3000'],
      trustProxy: false,
      rateLimit: {
        perUser: { limit: 2000, windowSeconds: 10 },
        perIp: { limit: 5000, windowSeconds: 10 },
        exempt: ['loopback'],
      },
      logLevel: 'info',
      workers: 1,
      validateResponses: true,
      timeouts: { request: 30_000, headers: 10_000, keepAlive: 65_000 },
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
      'DATABASE_POOL_SIZE',
      'DATABASE_STATEMENT_TIMEOUT',
      'RATE_LIMIT_PER_USER',
      'RATE_LIMIT_PER_IP',
      'RATE_LIMIT_EXEMPT',
      'TRUST_PROXY',
      'REQUEST_TIMEOUT',
      'KEEP_ALIVE_TIMEOUT',
    ]
    expect(parseConfig(Object.fromEntries(blank.map((name, i) => [name, i % 2 ? '' : '   '])))).toEqual(parseConfig({}))
  })

  test('when the configuration is parsed, then it is frozen', () => {
    const config = parseConfig({})
    expect(Object.isFrozen(config)).toBe(true)
    expect(Object.isFrozen(config.auth)).toBe(true)
    expect(Object.isFrozen(config.rateLimit)).toBe(true)
    expect(Object.isFrozen(config.timeouts)).toBe(true)
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
      DATABASE_POOL_SIZE: '25',
      DATABASE_STATEMENT_TIMEOUT: '2500ms',
      BETTER_AUTH_SECRET: ` ${secret} `,
      BETTER_AUTH_JWKS_URL: 'https://auth.example.com/api/auth/jwks',
      JWT_ISSUER: 'https://auth.example.com',
      JWT_AUDIENCE: ' https://auth.example.com , todo-api ,, ',
      JWT_USER_CLAIM: 'uid',
      CORS_ORIGINS: 'https://app.example.com, http://localhost:5173',
      LOG_LEVEL: 'debug',
      RATE_LIMIT_PER_USER: '100/1m',
      RATE_LIMIT_PER_IP: 'off',
      RATE_LIMIT_EXEMPT: '10.0.0.0/8, ::1',
      TRUST_PROXY: 'loopback, 10.0.0.0/8',
      REQUEST_TIMEOUT: '5',
      KEEP_ALIVE_TIMEOUT: '120',
    })
    expect(config).toEqual({
      env: 'test',
      port: 3001,
      host: '127.0.0.1',
      databaseUrl: 'postgresql://u:p@db.example.com:5432/todo?sslmode=require',
      databaseDirectUrl: 'postgresql://u:p@direct.example.com:5432/todo?sslmode=require',
      databasePrepare: false,
      databasePoolSize: 25,
      databaseStatementTimeout: 2500,
      dataDir: '/tmp/todo-data',
      auth: {
        secret,
        jwksUrl: new URL('https://auth.example.com/api/auth/jwks'),
        issuer: 'https://auth.example.com',
        audience: ['https://auth.example.com', 'todo-api'],
        userClaim: 'uid',
      },
      corsOrigins: ['https://app.example.com', 'http://localhost:5173'],
      trustProxy: ['loopback', '10.0.0.0/8'],
      rateLimit: { perUser: { limit: 100, windowSeconds: 60 }, perIp: undefined, exempt: ['10.0.0.0/8', '::1'] },
      logLevel: 'debug',
      workers: 1,
      validateResponses: true,
      timeouts: { request: 5000, headers: 5000, keepAlive: 120_000 },
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

describe('HTTP timeouts (issue 7: slow clients cannot hold a connection)', () => {
  test.each([
    ['1', 1000, 1000],
    ['10', 10_000, 10_000],
    ['60', 60_000, 10_000],
    ['3600', 3_600_000, 10_000],
  ])('when REQUEST_TIMEOUT is %s (seconds), then a request gets %i ms and its headers %i ms', (value, request, headers) => {
    expect(parseConfig({ REQUEST_TIMEOUT: value }).timeouts).toMatchObject({ request, headers })
  })

  test.each([
    ['1', 1000],
    ['620', 620_000],
  ])('when KEEP_ALIVE_TIMEOUT is %s (seconds), then an idle connection stays open %i ms', (value, keepAlive) => {
    expect(parseConfig({ KEEP_ALIVE_TIMEOUT: value }).timeouts.keepAlive).toBe(keepAlive)
  })

  test('when REQUEST_TIMEOUT is refused, then the message shows the range and what was given', () => {
    expect(refusal({ REQUEST_TIMEOUT: '30s' }).message).toBe('REQUEST_TIMEOUT must be an integer from 1 to 3600 (got "30s").')
  })
})

describe('rate limits and the client address (issue 7)', () => {
  test.each([
    ['1/1s', { limit: 1, windowSeconds: 1 }],
    ['2000/10s', { limit: 2000, windowSeconds: 10 }],
    ['60/5m', { limit: 60, windowSeconds: 300 }],
    ['100000/24h', { limit: 100_000, windowSeconds: 86_400 }],
    ['off', undefined],
  ])('when RATE_LIMIT_PER_USER and RATE_LIMIT_PER_IP are %s, then both limits are %j', (value, limit) => {
    expect(parseConfig({ RATE_LIMIT_PER_USER: value, RATE_LIMIT_PER_IP: value }).rateLimit).toMatchObject({ perUser: limit, perIp: limit })
  })

  test('when NODE_ENV=production sets no limits, then both are on at their defaults, as everywhere', () => {
    expect(parseConfig({ NODE_ENV: 'production', BETTER_AUTH_SECRET: secret }).rateLimit).toEqual(parseConfig({}).rateLimit)
  })

  test.each([
    ['none', []],
    ['loopback', ['loopback']],
    [' 203.0.113.7 , 2001:db8::/32,uniquelocal, linklocal ', ['203.0.113.7', '2001:db8::/32', 'uniquelocal', 'linklocal']],
  ])('when RATE_LIMIT_EXEMPT is "%s", then the exempt addresses are %j', (value, exempt) => {
    expect(parseConfig({ RATE_LIMIT_EXEMPT: value }).rateLimit.exempt).toEqual(exempt)
  })

  test.each([
    ['false', false],
    ['true', true],
    ['1', 1],
    ['2', 2],
    ['loopback', ['loopback']],
    ['10.0.0.1, 192.168.0.0/16, fd00::/8', ['10.0.0.1', '192.168.0.0/16', 'fd00::/8']],
  ])('when TRUST_PROXY is "%s", then Express trusts %j', (value, trust) => {
    expect(parseConfig({ TRUST_PROXY: value }).trustProxy).toEqual(trust)
  })

  test.each([
    ['0', undefined],
    ['off', undefined],
    ['250', 250],
    ['250ms', 250],
    ['30s', 30_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
  ])('when DATABASE_STATEMENT_TIMEOUT is %s, then queries get %s ms', (value, ms) => {
    expect(parseConfig({ DATABASE_STATEMENT_TIMEOUT: value }).databaseStatementTimeout).toBe(ms)
  })

  test('when a limit is refused, then the message shows the format and what was given', () => {
    expect(refusal({ RATE_LIMIT_PER_USER: '2000/10' }).message).toBe(
      'RATE_LIMIT_PER_USER must be off or <requests>/<window> like 2000/10s (window in s, m or h, at most 24h) (got "2000/10").',
    )
    expect(refusal({ TRUST_PROXY: 'yes' }).message).toBe(
      'TRUST_PROXY must be true, false, a hop count from 1 to 255, or a comma-separated list of addresses, CIDRs (10.0.0.0/8), loopback, linklocal and uniquelocal (got "yes").',
    )
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
    ['REQUEST_TIMEOUT', '0'],
    ['REQUEST_TIMEOUT', '2.5'],
    ['REQUEST_TIMEOUT', '30s'],
    ['REQUEST_TIMEOUT', '3601'],
    ['KEEP_ALIVE_TIMEOUT', '0'],
    ['KEEP_ALIVE_TIMEOUT', '-5'],
    ['KEEP_ALIVE_TIMEOUT', 'long'],
    ['BETTER_AUTH_JWKS_URL', 'not a url'],
    ['BETTER_AUTH_JWKS_URL', 'ftp://auth.example.com/jwks'],
    ['BETTER_AUTH_JWKS_URL', '/api/auth/jwks'],
    ['BETTER_AUTH_SECRET', 'x'.repeat(31)],
    ['BETTER_AUTH_SECRET', 'too-short'],
    ['DATABASE_POOL_SIZE', '0'],
    ['DATABASE_POOL_SIZE', '1001'],
    ['DATABASE_POOL_SIZE', 'ten'],
    ['DATABASE_STATEMENT_TIMEOUT', '10 s'],
    ['DATABASE_STATEMENT_TIMEOUT', '1.5s'],
    ['DATABASE_STATEMENT_TIMEOUT', '10sec'],
    ['DATABASE_STATEMENT_TIMEOUT', '25h'],
    ['DATABASE_STATEMENT_TIMEOUT', '-1'],
    ['RATE_LIMIT_PER_USER', '2000'],
    ['RATE_LIMIT_PER_USER', '2000/10'],
    ['RATE_LIMIT_PER_USER', '0/10s'],
    ['RATE_LIMIT_PER_USER', '10/0s'],
    ['RATE_LIMIT_PER_USER', '10/25h'],
    ['RATE_LIMIT_PER_USER', '10/500ms'],
    ['RATE_LIMIT_PER_USER', 'OFF'],
    ['RATE_LIMIT_PER_IP', '5000 per 10s'],
    ['RATE_LIMIT_PER_IP', 'false'],
    ['RATE_LIMIT_EXEMPT', 'localhost'],
    ['RATE_LIMIT_EXEMPT', '10.0.0.0/33'],
    ['RATE_LIMIT_EXEMPT', '10.0.0.0/255.0.0.0'],
    ['RATE_LIMIT_EXEMPT', 'loopback,,none'],
    ['RATE_LIMIT_EXEMPT', '::1/129'],
    ['TRUST_PROXY', 'yes'],
    ['TRUST_PROXY', '0'],
    ['TRUST_PROXY', '256'],
    ['TRUST_PROXY', 'loopback, proxy.example.com'],
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
