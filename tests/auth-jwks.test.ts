// Tokens signed with asymmetric keys, verified through a real JWKS served over HTTP on loopback.
import { randomUUID } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, jest, test } from '@jest/globals'
import {
  type AsymmetricAlg,
  deadUrl,
  expectAccepted,
  expectUnauthorized,
  type JwksServer,
  type ProblemJson,
  type SigningKey,
  signHmac,
  signingKey,
  signWith,
  startJwksServer,
} from './support/auth-keys.js'
import { newUser, startServer, type TestServer } from './support/server.js'

const algorithms: AsymmetricAlg[] = ['EdDSA', 'Ed25519', 'ES256', 'RS256', 'PS256']
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` })

async function expectUnavailable(response: Response): Promise<void> {
  const problem = (await response.json()) as ProblemJson
  expect({ status: response.status, type: problem.type }).toEqual({ status: 503, type: 'urn:todo-api:problem:unavailable' })
  expect(problem.detail).toBe("The token issuer's key set (JWKS) cannot be fetched; try again shortly.")
}

describe('a JWKS with one key per algorithm', () => {
  const keys = new Map<AsymmetricAlg, SigningKey>()
  let jwks: JwksServer
  let server: TestServer
  beforeAll(async () => {
    for (const key of await Promise.all(algorithms.map((alg) => signingKey(alg)))) keys.set(key.alg, key)
    jwks = await startJwksServer([...keys.values()])
    server = await startServer({ auth: { secret: undefined, jwksUrl: jwks.url } })
  })
  afterAll(async () => {
    await server.close()
    await jwks.close()
  })
  const key = (alg: AsymmetricAlg) => keys.get(alg) as SigningKey

  test.each(algorithms)('when a token is signed with %s, then tasks are created and listed in both spellings', async (alg) => {
    const user_id = newUser()
    await expectAccepted(server, await signWith(key(alg), { sub: user_id }), user_id)
  })

  test('when the published keys are fetched, then they carry kid, alg and use: sig', async () => {
    const published = ((await (await fetch(jwks.url)).json()) as { keys: { kid: string; alg: string; use: string }[] }).keys
    expect(published.map((k) => [k.alg, k.use, typeof k.kid])).toEqual(algorithms.map((alg) => [alg, 'sig', 'string']))
  })

  test('when the token names a kid the JWKS does not have, then 401 "unknown key"', async () => {
    const token = await signWith(key('EdDSA'), { sub: newUser() }, { kid: 'no-such-key' })
    await expectUnauthorized(await server.fetch('/api/tasks', { headers: bearer(token) }), 'The token is signed by an unknown key.', true)
  })

  test('when the token names a published kid but is signed by another private key, then 401 "signature is invalid"', async () => {
    const impostor = await signingKey('EdDSA', key('EdDSA').kid)
    const token = await signWith(impostor, { sub: newUser() })
    await expectUnauthorized(await server.fetch('/api/tasks', { headers: bearer(token) }), 'The token signature is invalid.', true)
  })

  test('when the header\'s alg does not match the alg of the key its kid names, then 401 "unknown key"', async () => {
    // A PS256 token naming the RS256 key: same key type, but the published JWK pins its algorithm.
    const relabelled = await signingKey('PS256', key('RS256').kid)
    const token = await signWith(relabelled, { sub: newUser() })
    await expectUnauthorized(await server.fetch('/api/tasks', { headers: bearer(token) }), 'The token is signed by an unknown key.', true)
  })

  test('when an asymmetric token has expired, then 401 "expired" (claims are checked as for the secret)', async () => {
    const now = Math.floor(Date.now() / 1000)
    const token = await signWith(key('ES256'), { sub: newUser(), iat: now - 900, exp: now - 60 })
    await expectUnauthorized(await server.fetch('/api/tasks', { headers: bearer(token) }), 'The token has expired.', true)
  })

  test('when the JWKS goes down after the set was cached, then cached keys keep working', async () => {
    const user_id = newUser()
    const token = await signWith(key('RS256'), { sub: user_id })
    expect((await server.fetch('/api/tasks', { headers: bearer(token) })).status).toBe(200)
    jwks.failWith(500)
    try {
      expect((await server.fetch('/api/tasks', { headers: bearer(token) })).status).toBe(200)
    } finally {
      jwks.failWith(undefined)
    }
  })
})

// Everything but Date: the servers, the pool and fetch keep their real timers.
const nonDateTimers = [
  'hrtime',
  'nextTick',
  'performance',
  'queueMicrotask',
  'requestAnimationFrame',
  'cancelAnimationFrame',
  'requestIdleCallback',
  'cancelIdleCallback',
  'setImmediate',
  'clearImmediate',
  'setInterval',
  'clearInterval',
  'setTimeout',
  'clearTimeout',
] as const

describe('key rotation', () => {
  afterEach(() => {
    jest.useRealTimers()
  })

  test('when a key is published before the first token, then it is used', async () => {
    const jwks = await startJwksServer([await signingKey('EdDSA')])
    const server = await startServer({ auth: { secret: undefined, jwksUrl: jwks.url } })
    try {
      const rotated = await signingKey('EdDSA')
      jwks.keys = [...jwks.keys, rotated.jwk]
      const user_id = newUser()
      await expectAccepted(server, await signWith(rotated, { sub: user_id }), user_id)
    } finally {
      await server.close()
      await jwks.close()
    }
  })

  test('when a key is published after the set was cached, then its first token is accepted at once (issue 7)', async () => {
    const old = await signingKey('EdDSA')
    const jwks = await startJwksServer([old])
    const server = await startServer({ auth: { secret: undefined, jwksUrl: jwks.url } })
    try {
      const user_id = newUser()
      expect((await server.fetch('/api/tasks', { headers: bearer(await signWith(old, { sub: user_id })) })).status).toBe(200)
      expect(jwks.fetches).toBe(1)

      // The issuer rotates: the new key is published next to the old one and signs from now on.
      const rotated = await signingKey('EdDSA')
      jwks.keys = [...jwks.keys, rotated.jwk]
      await expectAccepted(server, await signWith(rotated, { sub: user_id }), user_id)
      expect(jwks.fetches).toBe(2)
    } finally {
      await server.close()
      await jwks.close()
    }
  })

  test('when 200 requests at once name made-up kids, then all are 401 "unknown key" and the JWKS is fetched once per second (issue 7)', async () => {
    const key = await signingKey('EdDSA')
    const jwks = await startJwksServer([key])
    const server = await startServer({ auth: { secret: undefined, jwksUrl: jwks.url } })
    const flood = async () => {
      const tokens = await Promise.all(Array.from({ length: 200 }, () => signWith(key, { sub: newUser() }, { kid: randomUUID() })))
      const responses = await Promise.all(tokens.map((token) => server.fetch('/api/tasks', { headers: bearer(token) })))
      for (const response of responses) await expectUnauthorized(response, 'The token is signed by an unknown key.', true)
    }
    try {
      expect((await server.fetch('/api/tasks', { headers: bearer(await signWith(key, { sub: newUser() })) })).status).toBe(200)
      expect(jwks.fetches).toBe(1)

      // The clock stands still (timers, sockets and PostgreSQL run for real), so each flood falls within one second.
      jest.useFakeTimers({ doNotFake: [...nonDateTimers], now: Date.now() })
      await flood()
      expect(jwks.fetches).toBe(2)
      jest.setSystemTime(Date.now() + 1000)
      await flood()
      expect(jwks.fetches).toBe(3)
    } finally {
      jest.useRealTimers()
      await server.close()
      await jwks.close()
    }
  })

  test('when a new kid arrives within a second of the last refetch, then it is refused without a fetch until the second has passed; a withdrawn key is forgotten', async () => {
    const old = await signingKey('EdDSA')
    const jwks = await startJwksServer([old])
    const server = await startServer({ auth: { secret: undefined, jwksUrl: jwks.url } })
    try {
      const user_id = newUser()
      expect((await server.fetch('/api/tasks', { headers: bearer(await signWith(old, { sub: user_id })) })).status).toBe(200)
      jest.useFakeTimers({ doNotFake: [...nonDateTimers], now: Date.now() })
      const madeUp = await signWith(old, { sub: user_id }, { kid: 'no-such-key' })
      await expectUnauthorized(
        await server.fetch('/api/tasks', { headers: bearer(madeUp) }),
        'The token is signed by an unknown key.',
        true,
      )
      expect(jwks.fetches).toBe(2)

      // The issuer rotates and withdraws the old key in the same second.
      const rotated = await signingKey('EdDSA')
      jwks.keys = [rotated.jwk]
      const token = await signWith(rotated, { sub: user_id })
      await expectUnauthorized(await server.fetch('/api/tasks', { headers: bearer(token) }), 'The token is signed by an unknown key.', true)
      expect(jwks.fetches).toBe(2)

      jest.setSystemTime(Date.now() + 1000)
      await expectAccepted(server, token, user_id)
      expect(jwks.fetches).toBe(3)
      const stale = await signWith(old, { sub: newUser() })
      await expectUnauthorized(await server.fetch('/api/tasks', { headers: bearer(stale) }), 'The token is signed by an unknown key.', true)
      expect(jwks.fetches).toBe(3)
    } finally {
      jest.useRealTimers()
      await server.close()
      await jwks.close()
    }
  })
})

describe('the JWKS cannot be fetched', () => {
  let key: SigningKey
  beforeAll(async () => {
    key = await signingKey('EdDSA')
  })

  test('when nothing listens at the JWKS URL, then 503 unavailable on secured operations', async () => {
    const server = await startServer({ auth: { secret: undefined, jwksUrl: await deadUrl() } })
    try {
      const user_id = newUser()
      const token = await signWith(key, { sub: user_id })
      await expectUnavailable(await server.fetch('/api/tasks', { headers: bearer(token) }))
      const created = await server.fetch(`/api/${user_id}/tasks`, {
        method: 'POST',
        headers: { ...bearer(token), 'Content-Type': 'application/json' },
        body: JSON.stringify({ title: 'while the issuer is down' }),
      })
      await expectUnavailable(created)
      const [row] = await server.sql`select count(*)::int as count from tasks where user_id = ${user_id}`
      expect(row?.count).toBe(0)
    } finally {
      await server.close()
    }
  })

  test.each([
    ['answers 500', 500, '{"error":"boom"}'],
    ['answers 404', 404, 'not found'],
    ['answers 200 with a body that is not JSON', 200, '<html>maintenance</html>'],
    ['answers 200 with JSON that is not a key set', 200, '{"keys": "none"}'],
  ])('when the JWKS %s, then 503 unavailable', async (_, status, body) => {
    const jwks = await startJwksServer([key])
    jwks.failWith(status, body)
    const server = await startServer({ auth: { secret: undefined, jwksUrl: jwks.url } })
    try {
      await expectUnavailable(await server.fetch('/api/tasks', { headers: bearer(await signWith(key, { sub: newUser() })) }))
    } finally {
      await server.close()
      await jwks.close()
    }
  })

  test('when the JWKS is down and a token is malformed or uses the wrong algorithm, then it is still 401, not 503', async () => {
    const server = await startServer({ auth: { secret: undefined, jwksUrl: await deadUrl() } })
    try {
      await expectUnauthorized(await server.fetch('/api/tasks', { headers: bearer('abc') }), 'The token is malformed.', true)
      const hmac = await signHmac('a-secret-this-server-does-not-even-have-at-all', { sub: newUser() })
      await expectUnauthorized(
        await server.fetch('/api/tasks', { headers: bearer(hmac) }),
        'The token is signed with an algorithm this API does not accept.',
        true,
      )
      await expectUnauthorized(await server.fetch('/api/tasks'), 'Authorization header required', false)
    } finally {
      await server.close()
    }
  })

  test('when the JWKS comes back, then the same token is accepted', async () => {
    const jwks = await startJwksServer([key])
    jwks.failWith(500)
    const server = await startServer({ auth: { secret: undefined, jwksUrl: jwks.url } })
    try {
      const user_id = newUser()
      const token = await signWith(key, { sub: user_id })
      await expectUnavailable(await server.fetch('/api/tasks', { headers: bearer(token) }))
      jwks.failWith(undefined)
      await expectAccepted(server, token, user_id)
    } finally {
      await server.close()
      await jwks.close()
    }
  })
})
