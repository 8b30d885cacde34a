import { isUtf8 } from 'node:buffer'
import { createServer, IncomingMessage, type Server, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import cors from 'cors'
import express, { type Express, type RequestHandler, type Response } from 'express'
import * as OpenApiValidator from 'express-openapi-validator'
import type { Logger } from 'pino'
import typeis from 'type-is'
import { bearerAuth, type Verify } from './auth.js'
import { type ClientErrorDeps, clientErrorHandler } from './client-errors.js'
import type { Config } from './config.js'
import { contract, operationsOf } from './contract.js'
import type { Sql } from './db.js'
import type { EventHub } from './events/hub.js'
import { eventHandlers } from './events/routes.js'
import { inputRulesOf, misreadValues } from './input-checks.js'
import { requestLogger } from './logger.js'
import { mcpHandlers } from './mcp/routes.js'
import { metaHandlers } from './meta.js'
import { dispatchOperations, matchedOperation } from './operations.js'
import { type FieldError, invalid, Problem, problemHandler } from './problems.js'
import type { RateLimiter } from './rate-limit.js'
import { taskHandlers } from './tasks/routes.js'
import { webAssets } from './web/assets.js'

export interface AppDeps {
  sql: Sql
  verify: Verify
  config: Pick<Config, 'corsOrigins' | 'validateResponses' | 'trustProxy' | 'auth'>
  logger: Logger
  /** Per user and per client address; none: no limits. */
  rateLimiter?: RateLimiter
  /** The live event streams of this process. */
  events: EventHub
}

/** The whole API as an Express app that is not listening yet. */
export function createApp({ sql, verify, config, logger, rateLimiter, events }: AppDeps): Express {
  const app = express()
  app.disable('x-powered-by')
  // req.ip: the peer, or what a trusted proxy says in X-Forwarded-For (TRUST_PROXY).
  app.set('trust proxy', config.trustProxy)
  app.set('etag', false) // tasks carry their own ETag (src/tasks/etag.ts); nothing else is cached
  app.response.json = sendJson

  // 1. Request id (accepted or generated, always returned) and one log line per request.
  const logging = requestLogger(logger, (req) => matchedOperation(req)?.schema?.operationId)

  // 2. CORS for the configured origins only, credentials allowed; any other origin (or none) gets no CORS header.
  const allowedOrigins = new Set(config.corsOrigins)
  const corsHeaders = cors({
    origin: (origin, callback) => callback(null, origin !== undefined && allowedOrigins.has(origin) ? origin : false),
    credentials: true,
    exposedHeaders: [
      'Link',
      'Location',
      'ETag',
      'Idempotent-Replayed',
      'X-Request-Id',
      'Retry-After',
      'RateLimit-Limit',
      'RateLimit-Remaining',
      'RateLimit-Reset',
      'RateLimit-Policy',
    ],
    maxAge: 600,
  })
  const corsStep: RequestHandler = (req, res, next) => {
    res.setHeader('Vary', 'Origin')
    // Servers, scripts and same-origin pages send no Origin: nothing for CORS to answer.
    if (req.headers.origin === undefined) return next()
    corsHeaders(req, res, next)
  }
  // Then the client address's rate limit (when on; never /health and /ready), after CORS so that a
  // page can read its 429 and Retry-After.
  app.use(steps(logging, corsStep, ...(rateLimiter?.byAddress ? [rateLimiter.byAddress] : [])))

  // 3. The assets of the two HTML pages the contract declares (/docs and /), each under one fixed prefix:
  // the only paths the contract does not declare.
  app.use('/docs/assets', express.static(swaggerUiFolder, { index: false, fallthrough: false }))
  app.use('/app/assets', webAssets())

  // 4–6, one Express layer (see steps()):
  // 4. Request headers as the contract reads them, then JSON bodies up to 64 KiB. Any JSON value
  // parses, so a non-object is a 422 from the contract, not a 400.
  // 5. The contract: bearer security (401/403), then the request (422/404/405/415); responses outside production.
  // 6. The handler of the operation the validator matched (both URL spellings share each function);
  // the MCP server's tools call the same handlers.
  const handlers = { ...metaHandlers(sql), ...taskHandlers(sql, events.changed), ...eventHandlers(events) }
  app.use(
    steps(
      normalizeHeaders,
      express.json({ limit: '64kb', strict: false, verify: checkUtf8 }),
      ...OpenApiValidator.middleware({
        // A fresh copy: the validator mutates the document, and YAML anchors alias nodes between operations.
        apiSpec: JSON.parse(JSON.stringify(contract)),
        // allErrors: a form shows every field's problem at once (the 64 KiB body limit bounds the list).
        validateRequests: { allowUnknownQueryParameters: false, allErrors: true },
        validateResponses: config.validateResponses,
        // The user's rate limit counts once the token is verified: its 429 comes before request validation.
        validateSecurity: { handlers: { bearerAuth: rateLimiter ? rateLimiter.byUser(bearerAuth(verify)) : bearerAuth(verify) } },
        fileUploader: false, // the contract takes no multipart bodies: no multipart step on every request
        // Full format checks: the fast ones let `2026-02-30T25:00:00Z` through as a date-time.
        ajvFormats: { mode: 'full' },
      }),
      refuseMisreadInput,
      dispatchOperations(contract, { ...handlers, ...mcpHandlers(handlers, { issuer: config.auth.issuer }) }),
    ),
  )

  // 7. Whatever matched nothing, then the one error mapper.
  app.use((req) => {
    throw new Problem('not-found', `No route matches ${req.method} ${req.path}.`)
  })
  app.use(problemHandler(logger))
  return app
}

/**
 * The HTTP server for the app. Express gives every request and response its own prototypes
 * (Object.setPrototypeOf on each), which throws away what V8 learned about their shape and makes
 * every later property access on them slow. Here they are created as instances of subclasses whose
 * prototypes Express then uses as its own, so its swap changes nothing; subclasses (rather than
 * functions calling the Node constructors) keep V8's in-object layout for their fields as well.
 * Slow requests are cut off after the configured timeouts, and requests Node refuses get problem+json.
 */
export function createHttpServer(app: Express, { config, logger }: ClientErrorDeps): Server {
  class AppRequest extends IncomingMessage {}
  class AppResponse<R extends IncomingMessage = IncomingMessage> extends ServerResponse<R> {}
  Object.setPrototypeOf(AppRequest.prototype, app.request)
  Object.setPrototypeOf(AppResponse.prototype, app.response)
  app.request = AppRequest.prototype as unknown as Express['request']
  app.response = AppResponse.prototype as unknown as Express['response']
  const { request, headers, keepAlive } = config.timeouts
  const server = createServer(
    {
      IncomingMessage: AppRequest,
      ServerResponse: AppResponse,
      requestTimeout: request,
      headersTimeout: headers,
      // Node looks for requests over their time every 30 s by default: a slow one would be cut off that late.
      connectionsCheckingInterval: Math.min(1000, headers / 4),
    },
    app,
  )
  server.keepAliveTimeout = keepAlive
  return server.on('clientError', clientErrorHandler({ config, logger }))
}

/**
 * Runs handlers one after another as one Express layer, as app.use(...handlers) would run them as
 * several layers: next(error) (or a throw, or a rejected promise) skips the rest for the error
 * handlers, next() or next('route') goes on. Each Express layer costs every request a path match,
 * closures and a few objects.
 */
function steps(...handlers: RequestHandler[]): RequestHandler {
  return (req, res, next) => {
    let index = 0
    const step = (error?: unknown): void => {
      const handler = error && error !== 'route' ? undefined : handlers[index++]
      if (handler === undefined) {
        next(error === 'route' ? undefined : error)
        return
      }
      try {
        const result: unknown = handler(req, res, step)
        if (isPromise(result)) result.then(undefined, (rejected: unknown) => step(rejected || new Error('Rejected promise')))
      } catch (thrown) {
        step(thrown)
      }
    }
    step()
  }
}

const isPromise = (value: unknown): value is PromiseLike<unknown> =>
  (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function'

// swagger-ui-dist's own entry loads its 1.5 MB browser bundle into the server: only its folder is needed.
const swaggerUiFolder = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'))

// A body-less request has no media type, whatever header it carries (frontends send
// Content-Type: application/json on GET and DELETE too); an empty body (Content-Length: 0, as fetch
// sends on a body-less PATCH whatever the Content-Type) is read as JSON, i.e. `{}`. A body of any
// other type, or of none (application/octet-stream, RFC 9110 §8.3), or of a type that does not parse
// (`; charset=utf-8`), is never read: it is a 415, even where a body is optional, never silently
// ignored. JSON is always UTF-8 (RFC 8259), so a charset parameter is ignored rather than refused.
const normalizeHeaders: RequestHandler = (req, _res, next) => {
  if (!typeis.hasBody(req)) delete req.headers['content-type']
  else if (req.headers['content-length'] === '0' || typeis(req, ['application/json'])) req.headers['content-type'] = 'application/json'
  else {
    req.headers['content-type'] ||= 'application/octet-stream'
    unreadBodies.add(req)
  }
  next()
}

const unreadBodies = new WeakSet<object>()
const notUtf8 = new WeakSet<object>()

// body-parser decodes bytes that are not UTF-8 to U+FFFD: note it, so that they are refused, not stored.
function checkUtf8(req: object, _res: unknown, body: Buffer): void {
  if (!isUtf8(body)) notUtf8.add(req)
}

// What each operation's input needs beyond its JSON Schemas, by operationId.
const inputRules = new Map(
  operationsOf(contract).map(({ path, method, operation }) => [operation.operationId, inputRulesOf(contract, path, method)]),
)

/**
 * What the validator lets through but reads differently from what was sent, refused with the
 * contract's 422 (or 415) instead of being reinterpreted:
 * - ajv coerces numerals with Number(): `1e3`, `0x10`, `01`, `+1`, ` 1` pass as integers, and
 *   `1e999` as Infinity, which skips every numeric check (ajv-validator/ajv#2212): an integer
 *   parameter must be written as a plain decimal numeral, and be finite;
 * - a body the JSON parser never read (see normalizeHeaders) where the operation takes one, or whose
 *   bytes are not all UTF-8;
 * - what a tool call's arguments are checked for as well (misreadValues).
 */
const refuseMisreadInput: RequestHandler = (req, _res, next) => {
  const matched = matchedOperation(req)
  const operationId = matched?.schema?.operationId as string
  const rules = inputRules.get(operationId)
  if (unreadBodies.has(req) && rules?.takesBody) throw new Problem('unsupported-media-type', 'The request body must be application/json.')
  const errors: FieldError[] = []
  if (rules?.integers.path.length || rules?.integers.query.length) {
    const { path, query } = rules.integers
    const search = query.length ? new URLSearchParams(req.originalUrl.split('?')[1] ?? '') : undefined
    const check = (location: FieldError['location'], name: string, raw: string | null | undefined) => {
      if (raw === null || raw === undefined) return
      if (!/^-?(0|[1-9][0-9]*)$/.test(raw)) errors.push({ location, path: name, message: 'must be a plain decimal integer' })
      else if (!Number.isSafeInteger(Number(raw))) errors.push({ location, path: name, message: 'must be a finite number' })
    }
    for (const name of path) check('path', name, matched?.rawPathParams?.[name])
    for (const name of query) check('query', name, search?.get(name))
  }
  const invalidUtf8 = notUtf8.has(req)
  // A JSON-RPC body (POST /mcp) is an envelope: the arguments of a tool call in it are checked as the
  // input of the tool's own operation (src/mcp/call.ts), so that the tool answers with a tool error.
  if (rules && operationId !== 'serveMcp') {
    errors.push(...misreadValues(rules, { query: req.query as Record<string, unknown>, body: req.body, invalidUtf8 }))
  }
  if (invalidUtf8 && !errors.some((e) => e.location === 'body')) errors.push({ location: 'body', path: '', message: 'must be UTF-8' })
  if (errors.length === 0) return next()
  throw invalid(errors)
}

// Express's res.json goes through res.send (charset negotiation, ETag and freshness checks the API
// does not use); a JSON body needs only its type, its length and the bytes. Node measures the body
// given to end() and sends its Content-Length itself, except in answer to HEAD, which sends no body.
function sendJson(this: Response, body: unknown): Response {
  const text = JSON.stringify(body) ?? ''
  if (!this.hasHeader('Content-Type')) this.setHeader('Content-Type', 'application/json; charset=utf-8')
  if (this.req.method === 'HEAD') this.setHeader('Content-Length', Buffer.byteLength(text))
  this.end(text)
  return this
}
