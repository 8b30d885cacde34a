import type { ErrorRequestHandler, Request } from 'express'
import type { Logger } from 'pino'
import type { components } from '../generated/api.js'
import { contract } from './contract.js'
import { matchedOperation } from './operations.js'

export type ProblemBody = components['schemas']['Problem']
export type FieldError = components['schemas']['ValidationError']
type ProblemType = ProblemBody['type']
type Code = ProblemType extends `urn:todo-api:problem:${infer C}` ? C : never

const kinds: Record<Code, { status: number; title: string }> = {
  'bad-request': { status: 400, title: 'Bad Request' },
  'malformed-json': { status: 400, title: 'Malformed JSON' },
  unauthorized: { status: 401, title: 'Unauthorized' },
  forbidden: { status: 403, title: 'Forbidden' },
  'not-found': { status: 404, title: 'Not Found' },
  'method-not-allowed': { status: 405, title: 'Method Not Allowed' },
  'not-acceptable': { status: 406, title: 'Not Acceptable' },
  'request-timeout': { status: 408, title: 'Request Timeout' },
  'idempotency-key-reused': { status: 409, title: 'Conflict' },
  'idempotency-key-in-use': { status: 409, title: 'Conflict' },
  'precondition-failed': { status: 412, title: 'Precondition Failed' },
  'payload-too-large': { status: 413, title: 'Payload Too Large' },
  'unsupported-media-type': { status: 415, title: 'Unsupported Media Type' },
  validation: { status: 422, title: 'Unprocessable Content' },
  'rate-limited': { status: 429, title: 'Too Many Requests' },
  'headers-too-large': { status: 431, title: 'Request Header Fields Too Large' },
  internal: { status: 500, title: 'Internal Server Error' },
  unavailable: { status: 503, title: 'Service Unavailable' },
}

/** The one error type: everything that fails becomes one of these, then one problem+json body. */
export class Problem extends Error {
  override name = 'Problem'
  readonly status: number

  constructor(
    readonly code: Code,
    readonly detail: string,
    readonly extra: { errors?: FieldError[]; headers?: Record<string, string> } = {},
  ) {
    super(detail)
    this.status = kinds[code].status
  }

  body(requestId: string): ProblemBody {
    const { errors } = this.extra
    return {
      type: `urn:todo-api:problem:${this.code}`,
      title: kinds[this.code].title,
      status: this.status,
      detail: this.detail,
      request_id: requestId,
      ...(errors && { errors }),
    }
  }
}

const locations: Record<string, FieldError['location']> = {
  body: 'body',
  query: 'query',
  params: 'path',
  path: 'path',
  headers: 'header',
}

// A pattern is not for people: the contract words each one (`x-pattern-message`), and errors say that.
const patternMessages = new Map<string, string>()
;(function collect(node: unknown): void {
  if (typeof node !== 'object' || node === null) return
  const { pattern, 'x-pattern-message': message } = node as Record<string, unknown>
  if (typeof pattern === 'string' && typeof message === 'string') patternMessages.set(`must match pattern "${pattern}"`, message)
  for (const child of Object.values(node)) collect(child)
})(contract)

// express-openapi-validator reports `/body/title`, `/query/limit`, `/params/task_id`.
function fieldError(error: { path?: string; message?: string }): FieldError {
  const [, where = 'body', ...rest] = (error.path ?? '').replace(/^\./, '/').split(/[/.]/)
  const location = locations[where]
  // The validator reports a path segment it cannot percent-decode with the URL path itself (`/api/…`).
  if (!location) return { location: 'path', path: '', message: 'is not a valid percent-encoded URL path' }
  return {
    location,
    // A parameter is named as declared, also when one of its array items failed (`priority.0`).
    path: location === 'body' ? rest.map((s) => `/${s}`).join('') : (rest[0] ?? ''),
    message: wordingOf(error.message),
  }
}

/** An ajv message as the API words it: a pattern by what it means (`x-pattern-message`). */
export function wordingOf(message: string | undefined): string {
  return patternMessages.get(message ?? '') ?? message ?? 'is invalid'
}

interface HttpLikeError {
  status?: number
  statusCode?: number
  type?: string
  message?: string
  code?: string
  errors?: { path?: string; message?: string }[]
  headers?: Record<string, string>
}

// postgres.js connection failures and the server-side codes that mean "not now".
const unavailableCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  '57P01',
  '57P02',
  '57P03',
  '53300',
])

function isUnavailable(error: HttpLikeError): boolean {
  return (
    (error.code !== undefined && (unavailableCodes.has(error.code) || error.code.startsWith('08'))) ||
    (error instanceof AggregateError && error.errors.some((e) => isUnavailable(e)))
  )
}

/** Maps anything thrown by body parsing, the validator, jose or postgres.js to a Problem. */
export function toProblem(error: unknown, req: Request): Problem {
  if (error instanceof Problem) return error
  // The validator re-wraps what the security handler threw, and turns any status it does not know (503) into 500.
  if (req.authProblem) return req.authProblem
  const e = (error ?? {}) as HttpLikeError
  const status = e.status ?? e.statusCode
  if (e.type === 'entity.parse.failed') return new Problem('malformed-json', `The request body is not valid JSON: ${e.message}`)
  if (e.type === 'entity.too.large') return new Problem('payload-too-large', 'The request body is larger than 64 KiB.')
  if (e.type === 'charset.unsupported' || e.type === 'encoding.unsupported' || status === 415) {
    return new Problem('unsupported-media-type', 'The request body must be application/json.')
  }
  // query_canceled: statement_timeout (DATABASE_STATEMENT_TIMEOUT) stopped a query that took too long.
  if (e.code === '57014') return new Problem('unavailable', 'The database took too long to answer; try again shortly.')
  // The one rule of a task that spans fields and the stored task (PATCH may change either): a check constraint.
  if (e.code === '23514' && (error as { constraint_name?: string }).constraint_name === 'tasks_recurrence_needs_due_date') {
    return invalid([{ location: 'body', path: '/recurrence', message: 'needs a due_date (a recurring task must have one)' }])
  }
  if (isUnavailable(e)) return new Problem('unavailable', 'The database is unavailable; try again shortly.')
  switch (status) {
    case 400: {
      // Only the validator's 400s list errors; any other is the body parser failing to read the body.
      if (!e.errors) return new Problem('malformed-json', `The request body could not be read: ${e.message}`)
      return invalid(e.errors.map(fieldError))
    }
    case 401:
      return unauthorized(req, e.message ?? 'unauthorized')
    case 403:
      return new Problem('forbidden', e.message ?? 'Forbidden.')
    case 404:
      return new Problem('not-found', `No route matches ${req.method} ${req.path}.`)
    case 405:
      return new Problem('method-not-allowed', `${req.method} is not allowed on ${req.path}.`, { headers: e.headers ?? {} })
    case 503:
      return new Problem('unavailable', e.message ?? 'A service this API depends on is unavailable.')
  }
  return new Problem('internal', `An unexpected error occurred; quote request id ${req.id}.`)
}

/** 422 listing every failure; the detail repeats them in one readable line. */
export function invalid(errors: FieldError[]): Problem {
  const detail = errors.map((f) => `${[f.location, f.path].filter(Boolean).join(' ')}: ${f.message}`).join('; ')
  return new Problem('validation', detail, { errors })
}

/** 401 with the RFC 6750 challenge: `invalid_token` whenever a Bearer token was sent at all. */
export function unauthorized(req: Request, detail: string): Problem {
  // RFC 6750 §3: error_description is printable ASCII without `"` and `\` (Node refuses a header beyond Latin-1).
  const description = detail.replace(/[\u2010-\u2015]/g, '-').replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, '')
  const challenge = /^Bearer(\s|$)/i.test(req.headers.authorization ?? '')
    ? `Bearer realm="todo-api", error="invalid_token", error_description="${description}"`
    : 'Bearer realm="todo-api"'
  // An operation may name its RFC 9728 metadata (x-resource-metadata), where a client finds out how to get a token.
  const metadata = (matchedOperation(req)?.schema as { 'x-resource-metadata'?: string } | undefined)?.['x-resource-metadata']
  const pointer = metadata === undefined ? '' : `, resource_metadata="${req.protocol}://${req.host}${metadata}"`
  return new Problem('unauthorized', detail, { headers: { 'WWW-Authenticate': challenge + pointer } })
}

/** The one error middleware: logs, then answers problem+json. No stack or SQL reaches the client. */
export function problemHandler(logger: Logger): ErrorRequestHandler {
  return (error, req, res, _next) => {
    const problem = toProblem(error, req)
    if (problem.status >= 500) {
      logger.error({ err: error, request_id: req.id }, problem.detail)
    }
    if (res.headersSent) return res.destroy()
    try {
      res.status(problem.status).set(problem.extra.headers ?? {})
      res.type('application/problem+json').json(problem.body(String(req.id)))
    } catch (failure) {
      // Never fall through to Express's HTML error page (and its stack trace).
      logger.error({ err: failure, request_id: req.id }, 'the error mapper failed')
      if (res.headersSent) return res.destroy()
      const internal = new Problem('internal', `An unexpected error occurred; quote request id ${req.id}.`)
      res.writeHead(500, { 'Content-Type': 'application/problem+json; charset=utf-8' })
      res.end(JSON.stringify(internal.body(String(req.id))))
    }
  }
}
