// Every way a bearer token can be refused (SPEC.md, "Authentication" and "Errors"), against the
// real server and PostgreSQL: status, problem type, detail and the RFC 6750 challenge.
import { createPublicKey } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { exportSPKI } from 'jose'
import {
  expectAccepted,
  expectUnauthorized,
  handmadeJwt,
  type JwksServer,
  type SigningKey,
  signHmac,
  signingKey,
  signWith,
  startJwksServer,
} from './support/auth-keys.js'
import { newUser, secret, signIn, startServer, type TestServer, tokenFor } from './support/server.js'

const now = () => Math.floor(Date.now() / 1000)
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` })

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

/** GET /api/tasks (the token spelling) with the given headers. */
const listMine = (s: TestServer, headers: Record<string, string> = {}) => s.fetch('/api/tasks', { headers })

async function countTasks(s: TestServer, user_id: string): Promise<number> {
  const [row] = await s.sql`select count(*)::int as count from tasks where user_id = ${user_id}`
  return row?.count ?? 0
}

describe('the Authorization header', () => {
  test('when no Authorization header is sent, then 401 with the bare Bearer challenge', async () => {
    const response = await listMine(server)
    await expectUnauthorized(response, 'Authorization header required', false)
  })

  test('when no Authorization header is sent on a path-style route, then 401 and nothing is created', async () => {
    const user_id = newUser()
    const response = await server.fetch(`/api/${user_id}/tasks`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ title: 'sneaky' }),
    })
    await expectUnauthorized(response, 'Authorization header required', false)
    expect(await countTasks(server, user_id)).toBe(0)
  })

  test('when the Basic scheme is used, then 401 with the bare Bearer challenge', async () => {
    const response = await listMine(server, { Authorization: `Basic ${Buffer.from('alice:secret').toString('base64')}` })
    // RFC 6750 §3.1: a request without Bearer credentials gets the challenge without an error code.
    await expectUnauthorized(response, "Authorization header with scheme 'Bearer' required", false)
  })

  test('when the Basic scheme carries a valid JWT, then 401 all the same', async () => {
    const token = await tokenFor(newUser())
    const response = await listMine(server, { Authorization: `Basic ${token}` })
    await expectUnauthorized(response, "Authorization header with scheme 'Bearer' required", false)
  })

  test('when "Bearer" has no token after it, then 401', async () => {
    const response = await listMine(server, { Authorization: 'Bearer ' })
    await expectUnauthorized(response, 'The Authorization header must be "Bearer <token>".', true)
  })

  test('when the token contains characters a JWT cannot, then 401 naming the expected form', async () => {
    const response = await listMine(server, { Authorization: 'Bearer abc def' })
    await expectUnauthorized(response, 'The Authorization header must be "Bearer <token>".', true)
  })

  test.each([
    ['not a JWT at all', 'abc'],
    ['two segments', 'abc.def'],
    ['three segments of garbage', 'abc.def.ghi'],
    ['a header that is not JSON', `${Buffer.from('not json').toString('base64url')}.e30.sig`],
  ])('when the token is %s, then 401 "malformed"', async (_, token) => {
    const response = await listMine(server, bearer(token))
    await expectUnauthorized(response, 'The token is malformed.', true)
  })

  test('when the scheme is spelled in lower case, then the token is accepted (schemes are case-insensitive)', async () => {
    const user_id = newUser()
    const response = await listMine(server, { Authorization: `bearer ${await tokenFor(user_id)}` })
    expect(response.status).toBe(200)
  })
})

describe('the signature', () => {
  test('when the token is signed with another secret, then 401 "signature is invalid"', async () => {
    const token = await signHmac('another-secret-that-is-at-least-32-characters', { sub: newUser() })
    const response = await listMine(server, bearer(token))
    await expectUnauthorized(response, 'The token signature is invalid.', true)
  })

  test("when a valid token's payload is swapped for another user's, then 401 and the other user's tasks are untouched", async () => {
    const victim = await signIn(server)
    await victim.api.POST('/api/tasks', { body: { title: 'mine' } })
    const [header, , signature] = (await tokenFor(newUser())).split('.')
    const forged = handmadeJwt(
      JSON.parse(Buffer.from(header ?? '', 'base64url').toString()),
      { sub: victim.user_id, exp: now() + 600 },
      signature,
    )
    const response = await server.fetch(`/api/${victim.user_id}/tasks`, { headers: bearer(forged) })
    await expectUnauthorized(response, 'The token signature is invalid.', true)
    expect(await countTasks(server, victim.user_id)).toBe(1)
  })

  test('when the token is signed with HS384 or HS512 and the shared secret, then it is accepted', async () => {
    for (const alg of ['HS384', 'HS512'] as const) {
      const user_id = newUser()
      await expectAccepted(server, await signHmac(secret, { sub: user_id }, alg), user_id)
    }
  })
})

describe('alg: none (unsecured JWTs)', () => {
  test.each([
    ['"none" and no signature', { alg: 'none', typ: 'JWT' }, ''],
    ['"none" with a signature segment', { alg: 'none', typ: 'JWT' }, 'c2lnbmF0dXJl'],
    ['"None"', { alg: 'None' }, ''],
    ['"NONE"', { alg: 'NONE' }, ''],
  ])('when the header says %s, then 401 and nothing is created', async (_, header, signature) => {
    const user_id = newUser()
    const token = handmadeJwt(header, { sub: user_id, iat: now(), exp: now() + 600 }, signature)
    const response = await server.fetch(`/api/${user_id}/tasks`, {
      method: 'POST',
      headers: { ...bearer(token), 'Content-Type': 'application/json' },
      body: JSON.stringify({ title: 'unsigned' }),
    })
    await expectUnauthorized(response, 'The token is signed with an algorithm this API does not accept.', true)
    expect(await countTasks(server, user_id)).toBe(0)
  })
})

describe('time claims (5 s clock tolerance)', () => {
  test('when the token expired 10 s ago, beyond the tolerance, then 401 "expired"', async () => {
    const token = await signHmac(secret, { sub: newUser(), iat: now() - 120, exp: now() - 10 })
    await expectUnauthorized(await listMine(server, bearer(token)), 'The token has expired.', true)
  })

  test('when the token expired an hour ago, then 401 "expired"', async () => {
    const token = await signHmac(secret, { sub: newUser(), iat: now() - 7200, exp: now() - 3600 })
    await expectUnauthorized(await listMine(server, bearer(token)), 'The token has expired.', true)
  })

  test('when the token expired 2 s ago, within the tolerance, then it is still accepted', async () => {
    const user_id = newUser()
    const token = await signHmac(secret, { sub: user_id, iat: now() - 60, exp: now() - 2 })
    const response = await listMine(server, bearer(token))
    expect(response.status).toBe(200)
  })

  // Verified tokens are remembered by their text (src/auth.ts): the memory must not outlive exp.
  test('when a token already accepted (and remembered) reaches the end of its tolerance, then it is refused from then on', async () => {
    const token = await signHmac(secret, { sub: newUser(), iat: now() - 60, exp: now() - 3 }) // valid for one or two more seconds
    expect((await listMine(server, bearer(token))).status).toBe(200)
    expect((await listMine(server, bearer(token))).status).toBe(200)
    const deadline = Date.now() + 6_000
    let response = await listMine(server, bearer(token))
    while (response.status === 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      response = await listMine(server, bearer(token))
    }
    await expectUnauthorized(response, 'The token has expired.', true)
  })

  test('when nbf is a minute in the future, then 401 "not valid yet"', async () => {
    const token = await tokenFor(newUser(), { nbf: now() + 60 })
    await expectUnauthorized(await listMine(server, bearer(token)), 'The token is not valid yet.', true)
  })

  test('when nbf is 2 s in the future, within the tolerance, then it is accepted', async () => {
    const token = await tokenFor(newUser(), { nbf: now() + 2 })
    expect((await listMine(server, bearer(token))).status).toBe(200)
  })

  test('when nbf is in the past, then it is accepted', async () => {
    const token = await tokenFor(newUser(), { nbf: now() - 60 })
    expect((await listMine(server, bearer(token))).status).toBe(200)
  })

  test('when the token has no exp claim, then 401 naming the claim', async () => {
    const token = await signHmac(secret, { sub: newUser(), exp: undefined })
    await expectUnauthorized(await listMine(server, bearer(token)), 'The token has no "exp" claim.', true)
  })

  test('when exp is not a number, then 401', async () => {
    const token = await signHmac(secret, { sub: newUser(), exp: 'tomorrow' as unknown as number })
    await expectUnauthorized(await listMine(server, bearer(token)), 'The token\'s "exp" claim is invalid.', true)
  })
})

describe('the user claim', () => {
  test.each([
    ['missing', { sub: undefined }],
    ['empty', { sub: '' }],
    ['a number', { sub: 42 }],
    ['longer than 255 characters', { sub: 'u'.repeat(256) }],
    ['a string with a control character', { sub: 'user\n1' }],
  ])('when sub is %s, then 401 "not a user id"', async (_, claims) => {
    const token = await signHmac(secret, claims as Record<string, unknown>)
    await expectUnauthorized(await listMine(server, bearer(token)), `The token's "sub" claim is not a user id (1–255 characters).`, true)
  })

  test('when sub is exactly 255 characters, then it is accepted', async () => {
    const user_id = `u-${newUser()}`.padEnd(255, 'x')
    await expectAccepted(server, await tokenFor(user_id), user_id)
  })

  describe('with userClaim "uid"', () => {
    let custom: TestServer
    beforeAll(async () => {
      custom = await startServer({ auth: { userClaim: 'uid' } })
    })
    afterAll(() => custom.close())

    test('when the token carries uid, then the user is uid, not sub', async () => {
      const user_id = newUser()
      const other = newUser()
      const token = await tokenFor(other, { uid: user_id })
      await expectAccepted(custom, token, user_id)
      expect(await countTasks(custom, other)).toBe(0)
      const bySub = await custom.fetch(`/api/${other}/tasks`, { headers: bearer(token) })
      expect(bySub.status).toBe(403)
    })

    test('when the token carries only sub, then 401 naming the uid claim', async () => {
      const token = await tokenFor(newUser())
      await expectUnauthorized(await listMine(custom, bearer(token)), `The token's "uid" claim is not a user id (1–255 characters).`, true)
    })
  })
})

describe('issuer and audience', () => {
  const issuer = 'https://auth.example.com'
  const audience = ['https://todo.example.com', 'todo-api']
  let strict: TestServer
  beforeAll(async () => {
    strict = await startServer({ auth: { issuer, audience } })
  })
  afterAll(() => strict.close())

  test('when iss and aud are the configured ones, then the token is accepted', async () => {
    const user_id = newUser()
    await expectAccepted(strict, await tokenFor(user_id, { iss: issuer, aud: 'todo-api' }), user_id)
  })

  test('when aud is an array containing one configured audience, then the token is accepted', async () => {
    const user_id = newUser()
    await expectAccepted(strict, await tokenFor(user_id, { iss: issuer, aud: ['https://elsewhere.example.com', audience[0]] }), user_id)
  })

  test('when iss is another issuer, then 401 "issuer … does not trust"', async () => {
    const token = await tokenFor(newUser(), { iss: 'https://evil.example.com', aud: 'todo-api' })
    await expectUnauthorized(await listMine(strict, bearer(token)), 'The token was issued by an issuer this API does not trust.', true)
  })

  test('when iss is missing, then 401 naming the claim', async () => {
    const token = await tokenFor(newUser(), { aud: 'todo-api' })
    await expectUnauthorized(await listMine(strict, bearer(token)), 'The token has no "iss" claim.', true)
  })

  test('when aud is another audience, then 401 "meant for another audience"', async () => {
    const token = await tokenFor(newUser(), { iss: issuer, aud: 'https://other-api.example.com' })
    await expectUnauthorized(await listMine(strict, bearer(token)), 'The token is meant for another audience.', true)
  })

  test('when aud is missing, then 401 naming the claim', async () => {
    const token = await tokenFor(newUser(), { iss: issuer })
    await expectUnauthorized(await listMine(strict, bearer(token)), 'The token has no "aud" claim.', true)
  })

  test('when no issuer or audience is configured, then any iss and aud are accepted', async () => {
    const user_id = newUser()
    const token = await tokenFor(user_id, { iss: 'https://anyone.example.com', aud: 'anything' })
    expect((await listMine(server, bearer(token))).status).toBe(200)
  })
})

describe('algorithm confusion', () => {
  let rsa: SigningKey
  let ed: SigningKey
  let jwks: JwksServer
  let both: TestServer
  let jwksOnly: TestServer
  beforeAll(async () => {
    ;[rsa, ed] = await Promise.all([signingKey('RS256'), signingKey('EdDSA')])
    jwks = await startJwksServer([rsa, ed])
    both = await startServer({ auth: { jwksUrl: jwks.url } })
    jwksOnly = await startServer({ auth: { secret: undefined, jwksUrl: jwks.url } })
  })
  afterAll(async () => {
    await Promise.all([both.close(), jwksOnly.close()])
    await jwks.close()
  })

  // Every spelling of the public key an attacker could feed HMAC as its secret.
  async function publicKeyMaterials(key: SigningKey): Promise<[string, string | Uint8Array][]> {
    const pem = await exportSPKI(key.publicKey)
    const der = new Uint8Array(createPublicKey(pem).export({ type: 'spki', format: 'der' }))
    return [
      ['PEM', pem],
      ['PEM without its final newline', pem.trimEnd()],
      ['DER', der],
      ['JWK JSON', JSON.stringify(key.jwk)],
      ['JWKS JSON', JSON.stringify({ keys: jwks.keys })],
    ]
  }

  test('when an HS256 token is keyed with the JWKS public key (any encoding) and names its kid, then 401 on a server with secret + JWKS', async () => {
    for (const key of [rsa, ed]) {
      for (const [, material] of await publicKeyMaterials(key)) {
        const user_id = newUser()
        const token = await signHmac(material, { sub: user_id }, 'HS256', key.kid)
        const response = await both.fetch(`/api/${user_id}/tasks`, { headers: bearer(token) })
        await expectUnauthorized(response, 'The token signature is invalid.', true)
      }
    }
  })

  test('when an HS256 token is keyed with the JWKS public key, then 401 "algorithm" on a server with only a JWKS', async () => {
    for (const [, material] of await publicKeyMaterials(rsa)) {
      const token = await signHmac(material, { sub: newUser() }, 'HS256', rsa.kid)
      await expectUnauthorized(
        await listMine(jwksOnly, bearer(token)),
        'The token is signed with an algorithm this API does not accept.',
        true,
      )
    }
  })

  test('when a server has only a JWKS, then even a token signed with the (test) shared secret is refused', async () => {
    const token = await tokenFor(newUser())
    await expectUnauthorized(
      await listMine(jwksOnly, bearer(token)),
      'The token is signed with an algorithm this API does not accept.',
      true,
    )
  })

  test('when a server has only a secret, then validly signed RS256 and EdDSA tokens are refused without trying the secret', async () => {
    for (const key of [rsa, ed]) {
      const user_id = newUser()
      const token = await signWith(key, { sub: user_id })
      const response = await server.fetch(`/api/${user_id}/tasks`, { headers: bearer(token) })
      await expectUnauthorized(response, 'The token is signed with an algorithm this API does not accept.', true)
    }
  })

  test('when a token claims RS256 but carries an HMAC of the shared secret, then 401 on both kinds of server', async () => {
    const [header, payload, signature] = (await tokenFor(newUser())).split('.')
    const relabelled = `${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(header ?? '', 'base64url').toString()), alg: 'RS256' })).toString('base64url')}.${payload}.${signature}`
    await expectUnauthorized(
      await listMine(server, bearer(relabelled)),
      'The token is signed with an algorithm this API does not accept.',
      true,
    )
    // With the JWKS's one RS256 key chosen, the HMAC bytes fail as an RSA signature.
    await expectUnauthorized(await listMine(both, bearer(relabelled)), 'The token signature is invalid.', true)
  })

  test('when the same server gets honest tokens, then both the secret and the JWKS key work', async () => {
    const a = newUser()
    const b = newUser()
    await expectAccepted(both, await tokenFor(a), a)
    await expectAccepted(both, await signWith(rsa, { sub: b }), b)
  })
})

describe("another user's id in the path", () => {
  test('when user A calls every path-style operation on B, then 403 forbidden and B is unchanged', async () => {
    const a = await signIn(server)
    const b = await signIn(server)
    const created = await b.api.POST('/api/tasks', { body: { title: "B's task", description: 'untouched' } })
    const task = created.data
    if (!task) throw new Error('no task created')
    const [before] = await server.sql`select * from tasks where id = ${task.id}`

    const json = { ...bearer(a.token), 'Content-Type': 'application/json' }
    const tasks = `/api/${b.user_id}/tasks`
    const one = `${tasks}/${task.id}`
    const attempts: [string, RequestInit][] = [
      [tasks, { headers: bearer(a.token) }],
      [tasks, { method: 'POST', headers: json, body: JSON.stringify({ title: 'planted' }) }],
      [one, { headers: bearer(a.token) }],
      [one, { method: 'PUT', headers: json, body: JSON.stringify({ title: 'replaced', completed: true }) }],
      [one, { method: 'PATCH', headers: json, body: JSON.stringify({ title: 'patched' }) }],
      [`${one}/complete`, { method: 'PATCH', headers: bearer(a.token) }],
      [one, { method: 'DELETE', headers: bearer(a.token) }],
    ]
    for (const [path, init] of attempts) {
      const response = await server.fetch(path, init)
      const problem = (await response.json()) as { type: string; detail: string }
      expect({ path, method: init.method ?? 'GET', status: response.status, type: problem.type }).toEqual({
        path,
        method: init.method ?? 'GET',
        status: 403,
        type: 'urn:todo-api:problem:forbidden',
      })
      expect(problem.detail).toBe('The user in the path is not the authenticated user.')
      expect(response.headers.get('www-authenticate')).toBeNull()
    }
    const after = await server.sql`select * from tasks where user_id = ${b.user_id}`
    expect(after).toEqual([before])
    expect(await countTasks(server, a.user_id)).toBe(0)
  })

  test("when A uses the token spelling on B's task id, then it is not found (ownership comes from the token)", async () => {
    const a = await signIn(server)
    const b = await signIn(server)
    const task = (await b.api.POST('/api/tasks', { body: { title: "B's" } })).data
    const response = await a.api.GET('/api/tasks/{task_id}', { params: { path: { task_id: task?.id ?? 0 } } })
    expect(response.response.status).toBe(404)
  })

  test('when the path user differs only in case, then 403 (user ids are compared exactly)', async () => {
    const user_id = `User-${newUser()}`
    const token = await tokenFor(user_id)
    const response = await server.fetch(`/api/${user_id.toLowerCase()}/tasks`, { headers: bearer(token) })
    expect(response.status).toBe(403)
  })

  test('when the user id needs percent-encoding in the path, then the decoded id is compared', async () => {
    const user_id = `user with spaces/and slash ${newUser()}`
    const token = await tokenFor(user_id)
    const response = await server.fetch(`/api/${encodeURIComponent(user_id)}/tasks`, { headers: bearer(token) })
    expect(response.status).toBe(200)
  })
})
