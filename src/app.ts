import { createServer, IncomingMessage, type Server, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import cors from 'cors'
import express, { type Express, type RequestHandler, type Response } from 'express'
import * as OpenApiValidator from 'express-openapi-validator'
import type { Logger } from 'pino'
import typeis from 'type-is'
import { bearerAuth, type Verify } from './auth.js'
import type { Config } from './config.js'
import { contract } from './contract.js'
import type { Sql } from './db.js'
import { requestLogger } from './logger.js'
import { metaHandlers } from './meta.js'
import { dispatchOperations, matchedOperation } from './operations.js'
import { type FieldError, invalid, Problem, problemHandler } from './problems.js'
import { taskHandlers } from './tasks/routes.js'
import { webAssets } from './web/assets.js'

export interface AppDeps {
  sql: Sql
  verify: Verify
  config: Pick<Config, 'corsOrigins' | 'validateResponses'>
  logger: Logger
}

/** The whole API as an Express app that is not listening yet. */
export function createApp({ sql, verify, config, logger }: AppDeps): Express {
  const app = express()
  app.disable('x-powered-by')
  app.set('etag', false) // the contract declares no ETag (yet); see normalizeHeaders
  app.response.json = sendJson

  // 1. Request id (accepted or generated, always returned) and one log line per request.
  app.use(requestLogger(logger, (req) => matchedOperation(req)?.schema?.operationId))

  // 2. CORS for the configured origins only, credentials allowed; any other origin (or none) gets no CORS header.
  const allowedOrigins = new Set(config.corsOrigins)
  const corsHeaders = cors({
    origin: (origin, callback) => callback(null, origin !== undefined && allowedOrigins.has(origin) ? origin : false),
    credentials: true,
    exposedHeaders: ['Link', 'Location', 'ETag', 'X-Request-Id'],
    maxAge: 600,
  })
  app.use((req, res, next) => {
    res.setHeader('Vary', 'Origin')
    // Servers, scripts and same-origin pages send no Origin: nothing for CORS to answer.
    if (req.headers.origin === undefined) return next()
    corsHeaders(req, res, next)
  })

  // 3. The assets of the two HTML pages the contract declares (/docs and /), each under one fixed prefix:
  // the only paths the contract does not declare.
  app.use('/docs/assets', express.static(swaggerUiFolder, { index: false, fallthrough: false }))
  app.use('/app/assets', webAssets())

  // 4. Request headers as the contract reads them, then JSON bodies up to 64 KiB. Any JSON value
  // parses, so a non-object is a 422 from the contract, not a 400.
  app.use(normalizeHeaders, express.json({ limit: '64kb', strict: false }))

  // 5. The contract: bearer security (401/403), then the request (422/404/405/415); responses outside production.
  app.use(
    OpenApiValidator.middleware({
      // A fresh copy: the validator mutates the document, and YAML anchors alias nodes between operations.
      apiSpec: JSON.parse(JSON.stringify(contract)),
      // allErrors: a form shows every field's problem at once (the 64 KiB body limit bounds the list).
      validateRequests: { allowUnknownQueryParameters: false, allErrors: true },
      validateResponses: config.validateResponses,
      validateSecurity: { handlers: { bearerAuth: bearerAuth(verify) } },
      fileUploader: false, // the contract takes no multipart bodies: no multipart step on every request
    }),
    rejectNonFiniteNumbers,
  )

  // 6. The handler of the operation the validator matched (both URL spellings share each function).
  app.use(dispatchOperations(contract, { ...metaHandlers(sql), ...taskHandlers(sql) }))

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
 */
export function createHttpServer(app: Express): Server {
  class AppRequest extends IncomingMessage {}
  class AppResponse<R extends IncomingMessage = IncomingMessage> extends ServerResponse<R> {}
  Object.setPrototypeOf(AppRequest.prototype, app.request)
  Object.setPrototypeOf(AppResponse.prototype, app.response)
  app.request = AppRequest.prototype as unknown as Express['request']
  app.response = AppResponse.prototype as unknown as Express['response']
  return createServer({ IncomingMessage: AppRequest, ServerResponse: AppResponse }, app)
}

// swagger-ui-dist's own entry loads its 1.5 MB browser bundle into the server: only its folder is needed.
const swaggerUiFolder = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'))

// The contract declares no 304: Express would answer `If-None-Match: *` with one even without an ETag.
// A body-less request has no media type, whatever header it carries (frontends send
// Content-Type: application/json on GET and DELETE too); an empty body (Content-Length: 0, as fetch
// sends on a body-less PATCH whatever the Content-Type) is read as JSON, i.e. `{}`. A body without
// a Content-Type is application/octet-stream (RFC 9110 §8.3): a 415, even where a body is optional,
// never silently ignored. JSON is always UTF-8 (RFC 8259), so a charset parameter is ignored rather than refused.
const normalizeHeaders: RequestHandler = (req, _res, next) => {
  delete req.headers['if-none-match']
  delete req.headers['if-modified-since']
  if (!typeis.hasBody(req)) delete req.headers['content-type']
  else if (req.headers['content-length'] === '0' || typeis(req, ['application/json'])) req.headers['content-type'] = 'application/json'
  else if (!req.headers['content-type']) req.headers['content-type'] = 'application/octet-stream'
  next()
}

// ajv coerces `Infinity` and overflowing numerals (`1e999`, 309+ digits) in the path and query to
// Infinity, then skips every numeric check (ajv-validator/ajv#2212): refuse what the contract refuses.
const rejectNonFiniteNumbers: RequestHandler = (req, _res, next) => {
  const errors: FieldError[] = []
  const check = (location: FieldError['location'], params: Record<string, unknown>) => {
    for (const path in params) {
      const value = params[path]
      if (typeof value === 'number' && !Number.isFinite(value)) errors.push({ location, path, message: 'must be a finite number' })
    }
  }
  check('path', matchedOperation(req)?.pathParams ?? {})
  check('query', req.query ?? {})
  if (errors.length === 0) return next()
  throw invalid(errors)
}

// Express's res.json goes through res.send (charset negotiation, ETag and freshness checks the API
// does not use); a JSON body needs only its type, its length and the bytes.
function sendJson(this: Response, body: unknown): Response {
  const text = JSON.stringify(body) ?? ''
  if (!this.hasHeader('Content-Type')) this.setHeader('Content-Type', 'application/json; charset=utf-8')
  this.setHeader('Content-Length', Buffer.byteLength(text))
  this.end(text)
  return this
}
