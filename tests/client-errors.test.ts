// Issue 7: a request Node's HTTP parser refuses (a lower-case method, a garbled request line,
// headers over 16 KiB) or one that arrives too slowly is answered like every other error —
// problem+json with X-Request-Id, CORS for the configured origins, one warn log line — instead of
// Node's bare status line; and a slow client cannot hold a connection (slowloris).
import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { pino } from 'pino'
import { violations } from './support/contract.js'
import { startServer, type TestServer } from './support/server.js'

const timeouts = { request: 2000, headers: 1000 }
const allowedOrigin = 'http://localhost:3000'
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

interface LogLine {
  level: number
  msg: string
  code?: string
  req?: { id?: string }
  res?: { status?: number }
}

const logs: LogLine[] = []
let server: TestServer

beforeAll(async () => {
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) })
  server = await startServer({ timeouts, logger })
})
afterAll(() => server.close())

interface RawResponse {
  status: number
  headers: Headers
  body: string
}

/** A raw TCP connection to the server, for bytes no HTTP client would send. */
function rawConnection() {
  const { hostname, port } = new URL(server.url)
  const socket: Socket = connect(Number(port), hostname)
  let received = Buffer.alloc(0)
  let isClosed = false
  let wake = () => {}
  socket.on('data', (chunk: Buffer) => {
    received = Buffer.concat([received, chunk])
    wake()
  })
  socket.on('error', () => {}) // a reset shows as a missing response
  const closed = new Promise<void>((resolve) =>
    socket.on('close', () => {
      isClosed = true
      resolve()
      wake()
    }),
  )
  return {
    socket,
    /** Resolves when the server has closed the connection. */
    closed,
    /** Everything received and not yet read as a response. */
    rest: () => received.toString('latin1'),
    /** The next complete response on the connection. */
    async response(): Promise<RawResponse> {
      for (;;) {
        const parsed = parseResponse(received)
        if (parsed) {
          received = received.subarray(parsed.length)
          return parsed.response
        }
        if (isClosed) throw new Error(`the connection closed without a complete response: ${JSON.stringify(received.toString('latin1'))}`)
        await new Promise<void>((resolve) => {
          wake = resolve
        })
      }
    },
  }
}

function parseResponse(bytes: Buffer): { response: RawResponse; length: number } | undefined {
  const end = bytes.indexOf('\r\n\r\n')
  if (end === -1) return undefined
  const [statusLine = '', ...lines] = bytes.toString('latin1', 0, end).split('\r\n')
  const headers = new Headers()
  for (const line of lines) headers.append(line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim())
  const length = Number(headers.get('content-length'))
  if (!Number.isInteger(length)) throw new Error(`no Content-Length in ${statusLine}`)
  if (bytes.length < end + 4 + length) return undefined
  const body = bytes.toString('utf8', end + 4, end + 4 + length)
  return { response: { status: Number(statusLine.split(' ')[1]), headers, body }, length: end + 4 + length }
}

/** Sends the bytes and reads the one answer, which must close the connection. */
async function exchange(bytes: string): Promise<RawResponse> {
  const connection = rawConnection()
  connection.socket.write(bytes)
  const response = await connection.response()
  await connection.closed
  return response
}

/** Checks what every such answer has in common and returns its body. */
function expectProblem(response: { status: number; headers: Headers }, body: string, status: number, code: string) {
  expect(response.status).toBe(status)
  expect(response.headers.get('content-type')).toBe('application/problem+json; charset=utf-8')
  expect(response.headers.get('connection')).toBe('close')
  const problem = JSON.parse(body) as { type: string; status: number; detail: string; request_id: string }
  expect(problem).toMatchObject({ type: `urn:todo-api:problem:${code}`, status })
  const requestId = response.headers.get('x-request-id')
  expect(problem.request_id).toBe(requestId)
  // Answered before any operation matched: the contract's x-unmatched-responses declares it.
  expect(violations('', '', { status, headers: response.headers as Headers, body })).toEqual([])
  return problem
}

/** The warn line logged for the request, with its error code and status. */
function logLineFor(requestId: string | null): LogLine | undefined {
  return logs.find((line) => line.req?.id === requestId && line.code !== undefined)
}

describe('a lower-case method (fetch sends `patch` as written)', () => {
  test('when a frontend calls fetch with method "patch", then 400 problem+json says methods are upper-case, with its X-Request-Id, and a warn line is logged', async () => {
    const requestId = `issue-7-${Date.now()}`
    const response = await fetch(`${server.url}/api/tasks/1`, {
      method: 'patch',
      headers: { 'Content-Type': 'application/json', 'X-Request-Id': requestId },
      body: '{"completed":true}',
    })
    const problem = expectProblem(response, await response.text(), 400, 'bad-request')
    expect(problem.detail).toBe(
      'The request is not valid HTTP/1.1 (Invalid method encountered): methods are case-sensitive and upper-case: PATCH, not patch.',
    )
    expect(response.headers.get('x-request-id')).toBe(requestId)
    expect(response.headers.get('access-control-allow-origin')).toBeNull()
    expect(logLineFor(requestId)).toMatchObject({ level: 40, code: 'HPE_INVALID_METHOD', res: { status: 400 } })
  })

  test('when the request carries an X-Request-Id the API would not accept, then a fresh one is made', async () => {
    const response = await exchange('delete /api/tasks/1 HTTP/1.1\r\nHost: x\r\nX-Request-Id: not a sane id\r\n\r\n')
    const problem = expectProblem(response, response.body, 400, 'bad-request')
    expect(problem.detail).toContain('DELETE, not delete')
    expect(problem.request_id).toMatch(uuid)
    expect(logLineFor(problem.request_id)).toMatchObject({ level: 40, code: 'HPE_INVALID_METHOD', res: { status: 400 } })
  })

  test('when it comes from an allowed Origin, then the CORS headers let the page read the error', async () => {
    const response = await fetch(`${server.url}/api/tasks`, { method: 'patch', headers: { Origin: allowedOrigin }, body: '{}' })
    expectProblem(response, await response.text(), 400, 'bad-request')
    expect(response.headers.get('access-control-allow-origin')).toBe(allowedOrigin)
    expect(response.headers.get('access-control-allow-credentials')).toBe('true')
    expect(response.headers.get('access-control-expose-headers')).toContain('X-Request-Id')
    expect(response.headers.get('vary')).toBe('Origin')
  })

  test('when it comes from another Origin, then there is no CORS header', async () => {
    const response = await fetch(`${server.url}/api/tasks`, { method: 'patch', headers: { Origin: 'https://evil.example' }, body: '{}' })
    expectProblem(response, await response.text(), 400, 'bad-request')
    for (const name of ['Access-Control-Allow-Origin', 'Access-Control-Allow-Credentials', 'Access-Control-Expose-Headers']) {
      expect(response.headers.get(name)).toBeNull()
    }
  })
})

describe('bytes that are not HTTP', () => {
  test.each([
    ['a garbage request line', 'hello world\r\n\r\n', 'Invalid method encountered'],
    ['a header name with a space', 'GET /health HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n', 'Invalid header'],
    ['an unknown HTTP version', 'GET /health HTTP/9.9\r\nHost: x\r\n\r\n', 'Invalid HTTP version'],
    [
      'two Content-Length headers',
      'POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}',
      'Duplicate Content-Length',
    ],
  ])('when the server receives %s, then 400 problem+json and the connection is closed', async (_, bytes, reason) => {
    const response = await exchange(bytes)
    const problem = expectProblem(response, response.body, 400, 'bad-request')
    expect(problem.detail).toContain(`The request is not valid HTTP/1.1 (${reason}`)
    expect(logLineFor(problem.request_id)).toMatchObject({ level: 40, res: { status: 400 } })
  })
})

describe('headers over the limit', () => {
  test('when the headers are larger than 16 KiB, then 431 problem+json, logged', async () => {
    const response = await exchange(`GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: ${'a'.repeat(20_000)}\r\n\r\n`)
    const problem = expectProblem(response, response.body, 431, 'headers-too-large')
    expect(problem.detail).toBe('The request headers are larger than 16 KiB.')
    expect(logLineFor(problem.request_id)).toMatchObject({ level: 40, code: 'HPE_HEADER_OVERFLOW', res: { status: 431 } })
  })
})

describe('slow clients (slowloris)', () => {
  /** Writes the bytes one at a time, 100 ms apart, until they are all sent or the server closes. */
  function dribble(socket: Socket, bytes: string): { sent: () => number } {
    let sent = 0
    const timer = setInterval(() => {
      if (sent < bytes.length && socket.writable) socket.write(bytes[sent++] as string)
    }, 100)
    socket.on('close', () => clearInterval(timer))
    return { sent: () => sent }
  }

  test('when the headers arrive one byte at a time for longer than the headers timeout, then 408 problem+json and the connection is closed', async () => {
    const connection = rawConnection()
    const headers = `GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(100)}\r\n\r\n`
    const client = dribble(connection.socket, headers)
    const response = await connection.response()
    await connection.closed
    expect(client.sent()).toBeLessThan(headers.length)
    const problem = expectProblem(response, response.body, 408, 'request-timeout')
    expect(problem.detail).toBe('The request headers did not arrive within 1 s.')
    expect(problem.request_id).toMatch(uuid)
    expect(logLineFor(problem.request_id)).toMatchObject({ level: 40, code: 'ERR_HTTP_REQUEST_TIMEOUT', res: { status: 408 } })
  })

  test('when the body arrives one byte at a time for longer than the request timeout, then 408 problem+json with the request’s own id and CORS', async () => {
    const connection = rawConnection()
    connection.socket.write(
      `POST /api/tasks HTTP/1.1\r\nHost: x\r\nOrigin: ${allowedOrigin}\r\nX-Request-Id: slow-body-7\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`,
    )
    const client = dribble(connection.socket, `{"title":"${'a'.repeat(88)}"}`)
    const response = await connection.response()
    await connection.closed
    expect(client.sent()).toBeLessThan(100)
    const problem = expectProblem(response, response.body, 408, 'request-timeout')
    expect(problem.detail).toBe('The request did not arrive completely within 2 s.')
    expect(response.headers.get('x-request-id')).toBe('slow-body-7')
    expect(response.headers.get('access-control-allow-origin')).toBe(allowedOrigin)
    expect(logLineFor('slow-body-7')).toMatchObject({ level: 40, code: 'ERR_HTTP_REQUEST_TIMEOUT', res: { status: 408 } })
  })

  test('when a connection never sends a byte, then it is closed after the headers timeout without an answer or a log line', async () => {
    const logged = logs.length
    const connection = rawConnection()
    await connection.closed
    expect(connection.rest()).toBe('')
    expect(logs.slice(logged).filter((line) => line.code !== undefined)).toEqual([])
  })

  test('when a keep-alive connection idles longer than the headers timeout, then its next request is served; a malformed one after it still gets problem+json', async () => {
    const connection = rawConnection()
    connection.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
    const first = await connection.response()
    expect(first.status).toBe(200)
    expect(first.headers.get('connection')).toBe('keep-alive')
    // Idle past the headers timeout and a few of Node's checks: an idle connection is not a slow request.
    await new Promise((resolve) => setTimeout(resolve, timeouts.headers + 750))
    connection.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
    const second = await connection.response()
    expect(second.status).toBe(200)
    expect(JSON.parse(second.body)).toEqual({ status: 'ok' })
    connection.socket.write('get /health HTTP/1.1\r\nHost: x\r\n\r\n')
    const third = await connection.response()
    await connection.closed
    const problem = expectProblem(third, third.body, 400, 'bad-request')
    expect(problem.detail).toContain('GET, not get')
  })
})
