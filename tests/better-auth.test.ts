// The real better-auth package (jwt plugin, memory adapter) served on loopback, as a frontend's
// auth server would be: a user signs up, gets a JWT from /api/auth/token with the session cookie,
// and calls this API with it. The API only knows the JWKS URL, the issuer and the audience.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { betterAuth } from 'better-auth'
import { memoryAdapter } from 'better-auth/adapters/memory'
import { toNodeHandler } from 'better-auth/node'
import { jwt } from 'better-auth/plugins/jwt'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import { expectUnauthorized, handmadeJwt } from './support/auth-keys.js'
import { startServer, type TestServer } from './support/server.js'

function createAuth(baseURL: string) {
  return betterAuth({
    baseURL,
    secret: 'better-auth-own-secret-at-least-32-characters',
    database: memoryAdapter({ user: [], session: [], account: [], verification: [], jwks: [] }),
    emailAndPassword: { enabled: true },
    plugins: [jwt()],
    telemetry: { enabled: false },
  })
}

let authServer: Server
let baseURL: string
let api: TestServer

beforeAll(async () => {
  authServer = createServer()
  await new Promise<void>((resolve) => authServer.listen(0, '127.0.0.1', resolve))
  baseURL = `http://127.0.0.1:${(authServer.address() as AddressInfo).port}`
  authServer.on('request', toNodeHandler(createAuth(baseURL)))
  api = await startServer({
    auth: { secret: undefined, jwksUrl: new URL(`${baseURL}/api/auth/jwks`), issuer: baseURL, audience: [baseURL] },
  })
})
afterAll(async () => {
  await api.close()
  authServer.closeAllConnections()
  await new Promise((resolve) => authServer.close(resolve))
})

let counter = 0
/** Signs a new user up over HTTP, as a browser would, and returns the session cookie and the user id. */
async function signUp(): Promise<{ cookie: string; id: string; email: string }> {
  const email = `user${++counter}-${Date.now()}@example.com`
  const response = await fetch(`${baseURL}/api/auth/sign-up/email`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Origin: baseURL },
    body: JSON.stringify({ email, password: 'correct horse battery staple', name: 'Test User' }),
  })
  expect(response.status).toBe(200)
  const { user } = (await response.json()) as { user: { id: string } }
  const cookie = response.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ')
  expect(cookie).toMatch(/better-auth\.session_token=/)
  return { cookie, id: user.id, email }
}

/** The frontend's JWT: GET /api/auth/token with the session cookie. */
async function tokenOf(cookie: string): Promise<string> {
  const response = await fetch(`${baseURL}/api/auth/token`, { headers: { cookie } })
  expect(response.status).toBe(200)
  return ((await response.json()) as { token: string }).token
}

describe('a token from Better Auth', () => {
  test('when Better Auth issues a JWT, then it is EdDSA with a kid, sub = the user id, iss = aud = baseURL and a 15-minute life', async () => {
    const { cookie, id, email } = await signUp()
    const token = await tokenOf(cookie)
    const header = decodeProtectedHeader(token)
    expect(header).toEqual({ alg: 'EdDSA', kid: expect.any(String) })
    const claims = decodeJwt(token)
    expect(claims).toMatchObject({ sub: id, id, email, iss: baseURL, aud: baseURL })
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(900)

    const jwks = (await (await fetch(`${baseURL}/api/auth/jwks`)).json()) as { keys: { kid: string; kty: string; crv: string }[] }
    expect(jwks.keys).toContainEqual(expect.objectContaining({ kid: header.kid, kty: 'OKP', crv: 'Ed25519' }))
  })

  test('when the frontend calls the API with it, then tasks work in both spellings for the user of its sub', async () => {
    const { cookie, id } = await signUp()
    const client = api.client(await tokenOf(cookie))

    const viaPath = await client.POST('/api/{user_id}/tasks', { params: { path: { user_id: id } }, body: { title: 'from the path' } })
    expect(viaPath.response.status).toBe(201)
    expect(viaPath.data?.user_id).toBe(id)
    const viaToken = await client.POST('/api/tasks', { body: { title: 'from the token' } })
    expect(viaToken.response.status).toBe(201)
    expect(viaToken.data?.user_id).toBe(id)

    const byPath = await client.GET('/api/{user_id}/tasks', { params: { path: { user_id: id } } })
    const byToken = await client.GET('/api/tasks')
    expect(byPath.data?.map((t) => t.title).sort()).toEqual(['from the path', 'from the token'])
    expect(byToken.data).toEqual(byPath.data)

    const task_id = viaToken.data?.id ?? 0
    const toggled = await client.PATCH('/api/{user_id}/tasks/{task_id}/complete', { params: { path: { user_id: id, task_id } } })
    expect(toggled.data?.completed).toBe(true)
    const deleted = await client.DELETE('/api/tasks/{task_id}', { params: { path: { task_id } } })
    expect(deleted.response.status).toBe(204)
  })

  test('when the token comes from the set-auth-jwt header of get-session, then it works too', async () => {
    const { cookie, id } = await signUp()
    const session = await fetch(`${baseURL}/api/auth/get-session`, { headers: { cookie } })
    const token = session.headers.get('set-auth-jwt')
    expect(token).toEqual(expect.any(String))
    const listed = await api.client(token ?? '').GET('/api/{user_id}/tasks', { params: { path: { user_id: id } } })
    expect(listed.response.status).toBe(200)
    expect(listed.data).toEqual([])
  })

  test("when one Better Auth user names another's id in the path, then 403 and nothing is created", async () => {
    const alice = await signUp()
    const bob = await signUp()
    const client = api.client(await tokenOf(alice.cookie))
    const response = await client.POST('/api/{user_id}/tasks', { params: { path: { user_id: bob.id } }, body: { title: 'planted' } })
    expect(response.response.status).toBe(403)
    expect(response.error?.type).toBe('urn:todo-api:problem:forbidden')
    const [row] = await api.sql`select count(*)::int as count from tasks where user_id = ${bob.id}`
    expect(row?.count).toBe(0)
  })

  test('when a Better Auth token has its payload altered, then 401 "signature is invalid"', async () => {
    const { cookie } = await signUp()
    const victim = await signUp()
    const token = await tokenOf(cookie)
    const forged = handmadeJwt(decodeProtectedHeader(token), { ...decodeJwt(token), sub: victim.id, id: victim.id }, token.split('.')[2])
    const response = await api.fetch('/api/tasks', { headers: { Authorization: `Bearer ${forged}` } })
    await expectUnauthorized(response, 'The token signature is invalid.', true)
  })

  test('when the API expects another issuer or audience than the Better Auth baseURL, then its tokens are 401', async () => {
    const { cookie } = await signUp()
    const token = await tokenOf(cookie)
    const jwksUrl = new URL(`${baseURL}/api/auth/jwks`)
    for (const [auth, detail] of [
      [{ issuer: 'https://auth.example.com', audience: [baseURL] }, 'The token was issued by an issuer this API does not trust.'],
      [{ issuer: baseURL, audience: ['https://todo.example.com'] }, 'The token is meant for another audience.'],
    ] as const) {
      const other = await startServer({ auth: { secret: undefined, jwksUrl, ...auth } })
      try {
        await expectUnauthorized(await other.fetch('/api/tasks', { headers: { Authorization: `Bearer ${token}` } }), detail, true)
      } finally {
        await other.close()
      }
    }
  })

  test('when the session cookie itself is sent as a bearer token, then 401 (the API takes JWTs only)', async () => {
    const { cookie } = await signUp()
    const sessionToken = decodeURIComponent(cookie.split('=')[1] ?? '').split('.')[0] ?? ''
    const response = await api.fetch('/api/tasks', { headers: { Authorization: `Bearer ${sessionToken}` } })
    await expectUnauthorized(response, 'The token is malformed.', true)
  })
})
