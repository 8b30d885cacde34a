import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Request } from 'express'
import { createRemoteJWKSet, errors, type JWTVerifyGetKey, jwtVerify, SignJWT } from 'jose'
import type { Config } from './config.js'
import { matchedOperation } from './operations.js'
import { Problem, unauthorized } from './problems.js'

declare global {
  namespace Express {
    interface Request {
      /** The authenticated user, set by the bearer security handler. */
      user_id?: string
      /** Why authentication failed; the validator keeps only the status and message of what we throw. */
      authProblem?: Problem
    }
  }
}

// Pinned per key source: the shared secret only ever verifies HMAC, the JWKS only asymmetric algorithms.
export const secretAlgorithms = ['HS256', 'HS384', 'HS512']
export const jwksAlgorithms = ['EdDSA', 'Ed25519', 'ES256', 'RS256', 'PS256']
const clockTolerance = 5

/** Resolves to the user id; a token verified before is answered at once, without a promise. */
export type Verify = (token: string) => string | Promise<string>

/** Builds the one token verifier; it resolves to the user id or throws a Problem (401, or 503 when the JWKS is unreachable). */
export function createVerifier(auth: Config['auth']): Verify {
  const secret = auth.secret === undefined ? undefined : new TextEncoder().encode(auth.secret)
  const jwks = auth.jwksUrl && remoteKeySet(auth.jwksUrl)
  const algorithms = [...(secret ? secretAlgorithms : []), ...(jwks ? jwksAlgorithms : [])]
  const key: JWTVerifyGetKey = (header, token) => {
    if (secret && secretAlgorithms.includes(header.alg)) return secret
    if (jwks && jwksAlgorithms.includes(header.alg)) return jwks(header, token)
    throw new errors.JOSEAlgNotAllowed(`"alg" (Algorithm) Header Parameter value not allowed`)
  }
  const verify = async (token: string) => {
    const { payload } = await jwtVerify(token, key, {
      algorithms,
      issuer: auth.issuer,
      audience: auth.audience && [...auth.audience],
      clockTolerance,
      requiredClaims: ['exp'],
    }).catch((error: unknown) => {
      throw describe(error)
    })
    const user = payload[auth.userClaim]
    // The same rule as the contract's user_id path parameter.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
    if (typeof user !== 'string' || !/^[^\x00-\x1f]{1,255}$/.test(user)) {
      throw new Problem('unauthorized', `The token's "${auth.userClaim}" claim is not a user id (1–255 characters).`)
    }
    return { user, expires: (payload.exp as number) + clockTolerance }
  }
  return cached(verify, jwks ? jwksCacheSeconds : Number.POSITIVE_INFINITY)
}

// jose alone refetches the JWKS for an unknown kid only once its last fetch is older than a fixed
// cooldown, and so refuses a key the issuer has just rotated in for that long. Here an unknown kid
// refetches at once unless another unknown kid already did less than a second ago: requests that
// arrive while that fetch is in flight wait for it (jose runs one at a time), later ones are refused
// without a fetch. A flood of made-up kids thus costs the issuer at most one fetch per second per
// process, and a new key waits at most that second behind it. Unknown kids are not remembered: a
// flood never repeats one, and each refetch answers for every kid at once.
const unknownKidRefetchMs = 1000

function remoteKeySet(url: URL): JWTVerifyGetKey {
  // An infinite cooldown: jose never refetches for an unknown kid on its own; the rule above does.
  const jwks = createRemoteJWKSet(url, { timeoutDuration: 5000, cooldownDuration: Number.POSITIVE_INFINITY })
  let refetchedAt = Number.NEGATIVE_INFINITY
  return async (header, token) => {
    try {
      return await jwks(header, token)
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error
      if (!jwks.reloading) {
        if (Date.now() - refetchedAt < unknownKidRefetchMs) throw error
        refetchedAt = Date.now()
      }
      await jwks.reload()
      return jwks(header, token)
    }
  }
}

// A token verified once is the same token the next time: remember it (keyed by its exact text) until
// it expires, so a signature is checked once per token rather than once per request. A token verified
// by a JWKS key is re-verified every 30 s, so that a key the issuer withdraws stops working soon.
// Failures are never remembered. Bounded: when full, the oldest entry goes.
const cacheSize = 10_000
const jwksCacheSeconds = 30

function cached(verify: (token: string) => Promise<{ user: string; expires: number }>, maxSeconds: number): Verify {
  const verified = new Map<string, { user: string; until: number }>()
  return (token) => {
    const hit = verified.get(token)
    if (hit && hit.until > Date.now() / 1000) return hit.user
    return verify(token).then(({ user, expires }) => {
      verified.delete(token)
      if (verified.size >= cacheSize) verified.delete(verified.keys().next().value as string)
      verified.set(token, { user, until: Math.min(expires, Date.now() / 1000 + maxSeconds) })
      return user
    })
  }
}

function describe(error: unknown): Problem {
  if (error instanceof errors.JWTClaimValidationFailed) {
    const detail =
      error.reason === 'missing'
        ? `The token has no "${error.claim}" claim.`
        : ({
            nbf: 'The token is not valid yet.',
            iss: 'The token was issued by an issuer this API does not trust.',
            aud: 'The token is meant for another audience.',
          }[error.claim] ?? `The token's "${error.claim}" claim is invalid.`)
    return new Problem('unauthorized', detail)
  }
  if (error instanceof errors.JWTExpired) return new Problem('unauthorized', 'The token has expired.')
  if (error instanceof errors.JWSSignatureVerificationFailed) return new Problem('unauthorized', 'The token signature is invalid.')
  if (error instanceof errors.JOSEAlgNotAllowed)
    return new Problem('unauthorized', 'The token is signed with an algorithm this API does not accept.')
  if (error instanceof errors.JWKSNoMatchingKey) return new Problem('unauthorized', 'The token is signed by an unknown key.')
  // A JWKS that times out, fails to fetch (TypeError) or answers non-200 (the generic JOSEError) is down, not wrong.
  if (
    error instanceof errors.JWKSTimeout ||
    error instanceof errors.JWKSInvalid ||
    // By name: fetch may throw a TypeError of another realm (e.g. under a test runner's VM context).
    (error as { name?: unknown } | null)?.name === 'TypeError' ||
    (error instanceof errors.JOSEError && error.code === 'ERR_JOSE_GENERIC')
  ) {
    return new Problem('unavailable', "The token issuer's key set (JWKS) cannot be fetched; try again shortly.")
  }
  return new Problem('unauthorized', 'The token is malformed.')
}

/**
 * The contract's `bearerAuth` scheme: verifies the token and, on path-style routes, that the path names
 * the same user. Synchronous for a token verified before (the validator then goes on without waiting).
 */
export function bearerAuth(verify: Verify) {
  return (req: Request): true | Promise<true> => {
    try {
      const match = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(req.headers.authorization ?? '')
      if (!match?.[1]) throw new Problem('unauthorized', 'The Authorization header must be "Bearer <token>".')
      const user_id = verify(match[1])
      if (typeof user_id === 'string') return authenticated(req, user_id)
      return user_id.then(
        (user) => authenticated(req, user),
        (error: unknown) => refused(req, error),
      )
    } catch (error) {
      return refused(req, error)
    }
  }
}

function authenticated(req: Request, user_id: string): true {
  const pathUser = matchedOperation(req)?.pathParams?.user_id
  if (pathUser !== undefined && pathUser !== user_id) {
    refused(req, new Problem('forbidden', 'The user in the path is not the authenticated user.'))
  }
  req.user_id = user_id
  return true
}

function refused(req: Request, error: unknown): never {
  const problem = error instanceof Problem ? error : new Problem('internal', 'Authentication failed unexpectedly.')
  req.authProblem = problem.code === 'unauthorized' ? unauthorized(req, problem.detail) : problem
  throw problem
}

/** The signed-in user of a secured operation. */
export function userOf(req: { user_id?: string }): string {
  if (req.user_id === undefined) throw new Error('userOf() called on an unauthenticated route')
  return req.user_id
}

/** In development without any auth configuration: a random secret kept under the data directory. */
export function developmentSecret(dataDir: string): { secret: string; created: boolean } {
  const file = join(dataDir, 'auth-secret')
  try {
    return { secret: readFileSync(file, 'utf8').trim(), created: false }
  } catch {
    mkdirSync(dataDir, { recursive: true })
    const secret = randomBytes(32).toString('base64url')
    writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' })
    return { secret, created: true }
  }
}

/** Mints an HS256 token the way a Better Auth server sharing the secret would. */
export function mintToken(
  auth: Pick<Config['auth'], 'secret' | 'issuer' | 'audience' | 'userClaim'>,
  user_id: string,
  expiresIn: string | number = '1h',
): Promise<string> {
  if (auth.secret === undefined) throw new Error('mintToken needs a shared secret')
  let jwt = new SignJWT({ [auth.userClaim]: user_id })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt()
    .setExpirationTime(expiresIn)
  if (auth.issuer) jwt = jwt.setIssuer(auth.issuer)
  if (auth.audience) jwt = jwt.setAudience([...auth.audience])
  return jwt.sign(new TextEncoder().encode(auth.secret))
}
