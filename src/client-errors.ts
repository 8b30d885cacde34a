import { type IncomingMessage, METHODS, maxHeaderSize, type ServerResponse, STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import type { Config } from './config.js'
import { requestIdOf } from './logger.js'
import { Problem } from './problems.js'

export interface ClientErrorDeps {
  config: Pick<Config, 'corsOrigins' | 'timeouts'>
  logger: Logger
}

/** What Node passes to 'clientError': llhttp's parse errors carry the bytes it refused. */
interface ClientError extends Error {
  code?: string
  reason?: string
  rawPacket?: unknown
}

// The client has a grace period to read the answer and close before the connection is cut.
const lingerMs = 2000

/**
 * The 'clientError' listener of the HTTP server. A request Node's parser refuses (a lower-case
 * method, a garbled request line, headers over the limit) or one that does not arrive in time gets,
 * instead of Node's bare status line, the problem+json every other error gets: X-Request-Id, CORS
 * for the configured origins, one warn log line; then the connection is closed.
 */
export function clientErrorHandler({ config, logger }: ClientErrorDeps): (error: Error, socket: Duplex) => void {
  const allowedOrigins = new Set(config.corsOrigins)
  return (error, duplex) => {
    const e = error as ClientError
    // Node's own default handler reads the response in flight on the socket the same way.
    const socket = duplex as Socket & { _httpMessage?: ServerResponse | null }
    const inFlight = socket._httpMessage ?? undefined
    // Nothing can be said once an answer has started or the socket cannot take one (the second error a
    // closing client causes lands here too). A connection that never sent a byte made no request:
    // browsers open spare ones they may never use.
    if (e.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent || (isTimeout(e) && socket.bytesRead === 0)) {
      socket.destroy()
      return
    }
    const sent = inFlight ? inFlightHeaders(inFlight.req) : rawHeaders(e.rawPacket)
    const requestId = requestIdOf(sent.requestId)
    const problem = problemFor(e, sent.method, inFlight !== undefined, config.timeouts)
    const body = JSON.stringify(problem.body(requestId))
    const headers: [string, string][] = [
      ['Content-Type', 'application/problem+json; charset=utf-8'],
      ['Content-Length', String(Buffer.byteLength(body))],
      ['X-Request-Id', requestId],
      ['Vary', 'Origin'],
      ['Connection', 'close'],
    ]
    if (sent.origin !== undefined && allowedOrigins.has(sent.origin)) {
      headers.push(
        ['Access-Control-Allow-Origin', sent.origin],
        ['Access-Control-Allow-Credentials', 'true'],
        ['Access-Control-Expose-Headers', 'X-Request-Id'],
      )
    }
    logger.warn(
      { req: { id: requestId }, res: { status: problem.status }, code: e.code },
      `${e.code} answered ${problem.status}: ${problem.detail}`,
    )
    if (inFlight) {
      // A request the app is still reading (a slow body) is answered through its own response, which
      // then logs the request's line with this status, and is not answered a second time by the app.
      for (const [name, value] of headers) inFlight.setHeader(name, value)
      inFlight.writeHead(problem.status).end(body)
      return
    }
    const head = [`HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status]}`, `Date: ${new Date().toUTCString()}`]
    for (const [name, value] of headers) head.push(`${name}: ${value}`)
    // end, not destroy: closing a socket whose request was not read in full resets the connection, and
    // the client can lose the answer. Its next byte or its close comes back here, unwritable, and ends it.
    socket.end(`${head.join('\r\n')}\r\n\r\n${body}`)
    setTimeout(() => socket.destroy(), lingerMs).unref()
  }
}

interface SentHeaders {
  requestId?: string | undefined
  origin?: string | undefined
  method?: string | undefined
}

const isTimeout = (error: ClientError) => error.code === 'ERR_HTTP_REQUEST_TIMEOUT'

function problemFor(error: ClientError, method: string | undefined, headersDone: boolean, timeouts: Config['timeouts']): Problem {
  switch (error.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return headersDone
        ? new Problem('request-timeout', `The request did not arrive completely within ${timeouts.request / 1000} s.`)
        : new Problem('request-timeout', `The request headers did not arrive within ${timeouts.headers / 1000} s.`)
    case 'HPE_HEADER_OVERFLOW':
      return new Problem('headers-too-large', `The request headers are larger than ${maxHeaderSize / 1024} KiB.`)
    case 'HPE_INVALID_METHOD': {
      const upper = method?.toUpperCase()
      const example =
        upper !== undefined && upper !== method && METHODS.includes(upper) ? `${upper}, not ${method}` : 'e.g. PATCH, not patch'
      return new Problem('bad-request', `${notHttp(error)}: methods are case-sensitive and upper-case: ${example}.`)
    }
    default:
      return new Problem('bad-request', `${notHttp(error)}.`)
  }
}

const notHttp = (error: ClientError) => `The request is not valid HTTP/1.1 (${error.reason ?? error.message})`

function inFlightHeaders(req: IncomingMessage): SentHeaders {
  const { id } = req as IncomingMessage & { id?: string }
  return { requestId: id ?? req.headers['x-request-id']?.toString(), origin: req.headers.origin, method: req.method }
}

/**
 * The headers the refused bytes carry, read defensively: the packet may be absent, start in the middle
 * of a request (only the chunk that failed is kept) or stop in the middle of a line, which is ignored.
 */
function rawHeaders(packet: unknown): SentHeaders {
  if (!Buffer.isBuffer(packet)) return {}
  const text = packet.toString('latin1', 0, Math.min(packet.length, 2 * maxHeaderSize))
  const end = text.indexOf('\r\n\r\n')
  const lines = (end === -1 ? text : text.slice(0, end)).split('\r\n')
  if (end === -1) lines.pop()
  const sent: SentHeaders = { method: /^([A-Za-z]{1,20}) /.exec(text)?.[1] }
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':')
    if (colon <= 0) continue
    const name = line.slice(0, colon).toLowerCase()
    if (name === 'origin') sent.origin ??= line.slice(colon + 1).trim()
    else if (name === 'x-request-id') sent.requestId ??= line.slice(colon + 1).trim()
  }
  return sent
}
