// Signing keys, tokens and a real JWKS server for the authentication tests. Nothing here imitates
// the app: keys come from jose, the JWKS is served over real HTTP on loopback.
import { randomUUID } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { expect } from '@jest/globals'
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose'
import type { TestServer } from './server.js'

export type AsymmetricAlg = 'EdDSA' | 'Ed25519' | 'ES256' | 'RS256' | 'PS256'

export interface SigningKey {
  readonly alg: AsymmetricAlg
  readonly kid: string
  readonly privateKey: CryptoKey
  readonly publicKey: CryptoKey
  /** The public JWK as a JWKS publishes it: kid, alg, use: 'sig'. */
  readonly jwk: JWK
}

/** A fresh extractable key pair of the algorithm, with its public JWK. */
export async function signingKey(alg: AsymmetricAlg, kid = `${alg}-${randomUUID()}`): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }
  return { alg, kid, privateKey, publicKey, jwk }
}

const now = () => Math.floor(Date.now() / 1000)

/** A token signed with the key, `kid` in the header, `iat` now and `exp` in 10 minutes unless the claims say otherwise. */
export function signWith(key: SigningKey, claims: JWTPayload, header: { kid?: string | undefined; alg?: string } = {}): Promise<string> {
  const kid = 'kid' in header ? header.kid : key.kid
  return new SignJWT({ iat: now(), exp: now() + 600, ...claims })
    .setProtectedHeader({ alg: header.alg ?? key.alg, typ: 'JWT', ...(kid === undefined ? {} : { kid }) })
    .sign(key.privateKey)
}

/** An HMAC token with an arbitrary key (bytes or text), `exp` in 10 minutes unless the claims say otherwise. */
export function signHmac(key: string | Uint8Array, claims: JWTPayload, alg: 'HS256' | 'HS384' | 'HS512' = 'HS256', kid?: string) {
  const bytes = typeof key === 'string' ? new TextEncoder().encode(key) : key
  return new SignJWT({ iat: now(), exp: now() + 600, ...claims })
    .setProtectedHeader({ alg, typ: 'JWT', ...(kid === undefined ? {} : { kid }) })
    .sign(bytes)
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

/** A JWT assembled by hand: any header, any payload, any (or no) signature segment. */
export function handmadeJwt(header: Record<string, unknown>, payload: Record<string, unknown>, signature = ''): string {
  return `${base64url(header)}.${base64url(payload)}.${signature}`
}

export interface JwksServer {
  /** e.g. http://127.0.0.1:40123/.well-known/jwks.json */
  readonly url: URL
  /** The keys currently published; change it to rotate. */
  keys: JWK[]
  /** How many times the key set was fetched. */
  readonly fetches: number
  /** Answer with this status and body instead of the key set (e.g. 500, or 200 with a body that is not a key set). */
  failWith(status: number | undefined, body?: string): void
  close(): Promise<void>
}

/** A real JWKS endpoint on loopback, publishing the public JWKs of the given keys. */
export async function startJwksServer(keys: SigningKey[]): Promise<JwksServer> {
  let failure: { status: number; body: string } | undefined
  let fetches = 0
  const state = { keys: keys.map((k) => k.jwk) }
  const server: Server = createServer((req, res) => {
    if (req.url !== '/.well-known/jwks.json') {
      res.writeHead(404).end()
      return
    }
    fetches++
    if (failure) {
      res.writeHead(failure.status, { 'Content-Type': 'application/json' }).end(failure.body)
      return
    }
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys: state.keys }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`)
  return {
    url,
    get keys() {
      return state.keys
    },
    set keys(value) {
      state.keys = value
    },
    get fetches() {
      return fetches
    },
    failWith(status, body = '{"error":"unavailable"}') {
      failure = status === undefined ? undefined : { status, body }
    },
    async close() {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

/** A loopback URL on which nothing listens (the port was just released). */
export async function deadUrl(path = '/.well-known/jwks.json'): Promise<URL> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return new URL(`http://127.0.0.1:${port}${path}`)
}

export interface ProblemJson {
  type: string
  title: string
  status: number
  detail: string
  request_id: string
}

/**
 * Asserts a 401 problem and its RFC 6750 challenge: the bare `Bearer realm="todo-api"` when no
 * credentials were sent, `error="invalid_token"` with the detail as description when a token was.
 */
export async function expectUnauthorized(response: Response, detail: string | RegExp, tokenSent: boolean): Promise<ProblemJson> {
  const problem = (await response.json()) as ProblemJson
  expect({ status: response.status, type: problem.type, title: problem.title }).toEqual({
    status: 401,
    type: 'urn:todo-api:problem:unauthorized',
    title: 'Unauthorized',
  })
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/)
  expect(problem.detail).toMatch(detail)
  const challenge = response.headers.get('www-authenticate')
  if (tokenSent) {
    // RFC 6750 §3: the description is the detail in printable ASCII, without quotes or backslashes.
    const description = problem.detail.replace(/–/g, '-').replace(/["\\]/g, '')
    expect(challenge).toBe(`Bearer realm="todo-api", error="invalid_token", error_description="${description}"`)
  } else {
    expect(challenge).toBe('Bearer realm="todo-api"')
  }
  return problem
}

/** Proves a token works the way a frontend uses it: a task created in each spelling, both listed back in each. */
export async function expectAccepted(s: TestServer, token: string, user_id: string): Promise<void> {
  const api = s.client(token)
  const viaPath = await api.POST('/api/{user_id}/tasks', { params: { path: { user_id } }, body: { title: 'path style' } })
  expect(viaPath.response.status).toBe(201)
  expect(viaPath.data?.user_id).toBe(user_id)
  const viaToken = await api.POST('/api/tasks', { body: { title: 'token style' } })
  expect(viaToken.response.status).toBe(201)
  for (const listed of [await api.GET('/api/tasks'), await api.GET('/api/{user_id}/tasks', { params: { path: { user_id } } })]) {
    expect(listed.response.status).toBe(200)
    expect(listed.data?.map((t) => t.title).sort()).toEqual(['path style', 'token style'])
  }
}
