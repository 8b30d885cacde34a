import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { contract } from '../src/contract.js'
import { signIn, startServer, type TestServer } from './support/server.js'

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const frontend = 'http://localhost:3000' // the configured CORS origin of the test server

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

describe('health and readiness', () => {
  test('when /health is asked, then it answers 200', async () => {
    const response = await server.fetch('/health')
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ status: 'ok' })
  })

  test('when /ready is asked and PostgreSQL answers, then it answers 200', async () => {
    const response = await server.fetch('/ready')
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ status: 'ok' })
  })
})

describe('the API reference at /docs', () => {
  test('when /docs is loaded, then every script and stylesheet it references is served locally with its content type', async () => {
    const response = await server.fetch('/docs')
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^text\/html/)
    const html = await response.text()
    expect(html).not.toMatch(/https?:\/\//) // no CDN: it works offline

    const references = [...html.matchAll(/\b(src|href)\s*=\s*["']([^"']+)["']/g)].map(([, attribute, url]) => ({ attribute, url }))
    const scripts = references.filter((r) => r.attribute === 'src').map((r) => r.url)
    const stylesheets = [...html.matchAll(/<link\b[^>]*\brel=["']stylesheet["'][^>]*>/g)].map(
      ([tag]) => /\bhref=["']([^"']+)["']/.exec(tag)?.[1],
    )
    expect(scripts.length).toBeGreaterThan(0)
    expect(stylesheets.length).toBeGreaterThan(0)
    for (const { url } of references) expect(url).toMatch(/^\/(?!\/)/) // same origin, not protocol-relative

    for (const url of scripts) {
      const asset = await fetch(new URL(url as string, server.url))
      expect({ url, status: asset.status }).toEqual({ url, status: 200 })
      expect(asset.headers.get('content-type')).toMatch(/^(text|application)\/javascript/)
      expect((await asset.text()).length).toBeGreaterThan(1000)
    }
    for (const url of stylesheets) {
      const asset = await fetch(new URL(url as string, server.url))
      expect({ url, status: asset.status }).toEqual({ url, status: 200 })
      expect(asset.headers.get('content-type')).toMatch(/^text\/css/)
      expect((await asset.text()).length).toBeGreaterThan(1000)
    }
  })

  test("when /docs is loaded, then it renders /openapi.json without Swagger UI's online validator (a call to validator.swagger.io)", async () => {
    const html = await (await server.fetch('/docs')).text()
    const options = /SwaggerUIBundle\(\s*\{([^}]*)\}\s*\)/.exec(html)?.[1] ?? ''
    expect(options).toMatch(/\burl:\s*'\/openapi\.json'/)
    expect(options).toMatch(/\bvalidatorUrl:\s*(null|'none')/)
  })

  test('when an asset that does not exist under /docs/assets is asked, then it is a 404', async () => {
    const response = await fetch(`${server.url}/docs/assets/no-such-file.js`)
    expect(response.status).toBe(404)
    await response.arrayBuffer()
  })
})

describe('the contract, served', () => {
  test('when /openapi.json is asked, then it is the YAML contract, parsed', async () => {
    const response = await server.fetch('/openapi.json')
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await response.json()).toEqual(contract)
  })

  test('when /openapi.yaml is asked, then it is the text of contracts/openapi.yaml with a YAML content type', async () => {
    const response = await server.fetch('/openapi.yaml')
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^application\/yaml/)
    expect(await response.text()).toBe(readFileSync(new URL('../contracts/openapi.yaml', import.meta.url), 'utf8'))
  })
})

describe('CORS', () => {
  test('when the configured origin sends a preflight for an authenticated JSON POST, then it is allowed with credentials', async () => {
    const response = await fetch(`${server.url}/api/tasks`, {
      method: 'OPTIONS',
      headers: {
        Origin: frontend,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'authorization,content-type',
      },
    })
    expect(response.status).toBe(204)
    expect(response.headers.get('access-control-allow-origin')).toBe(frontend)
    expect(response.headers.get('access-control-allow-credentials')).toBe('true')
    expect(list(response.headers.get('access-control-allow-methods'))).toContain('post')
    expect(list(response.headers.get('access-control-allow-headers'))).toEqual(expect.arrayContaining(['authorization', 'content-type']))
    expect(list(response.headers.get('vary'))).toContain('origin')
  })

  test('when the configured origin makes a request, then the response exposes Link, Location, ETag and X-Request-Id', async () => {
    const { token } = await signIn(server)
    const response = await server.fetch('/api/tasks', {
      method: 'POST',
      headers: { Origin: frontend, Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ title: 'from the browser' }),
    })
    expect(response.status).toBe(201)
    expect(response.headers.get('access-control-allow-origin')).toBe(frontend)
    expect(response.headers.get('access-control-allow-credentials')).toBe('true')
    expect(list(response.headers.get('access-control-expose-headers'))).toEqual(
      expect.arrayContaining(['link', 'location', 'etag', 'x-request-id']),
    )
    expect(list(response.headers.get('vary'))).toContain('origin')
  })

  test('when a page sends If-Match or Idempotency-Key, then the preflight allows them, and Retry-After, RateLimit-* and Idempotent-Replayed are readable', async () => {
    const preflight = await fetch(`${server.url}/api/tasks/1`, {
      method: 'OPTIONS',
      headers: {
        Origin: frontend,
        'Access-Control-Request-Method': 'PATCH',
        'Access-Control-Request-Headers': 'authorization,if-match,idempotency-key',
      },
    })
    expect(list(preflight.headers.get('access-control-allow-methods'))).toContain('patch')
    expect(list(preflight.headers.get('access-control-allow-headers'))).toEqual(
      expect.arrayContaining(['authorization', 'if-match', 'idempotency-key']),
    )
    const response = await server.fetch('/health', { headers: { Origin: frontend } })
    expect(list(response.headers.get('access-control-expose-headers'))).toEqual(
      expect.arrayContaining([
        'retry-after',
        'ratelimit-limit',
        'ratelimit-remaining',
        'ratelimit-reset',
        'ratelimit-policy',
        'idempotent-replayed',
      ]),
    )
  })

  test('when an origin that is not configured makes a request or a preflight, then it gets no CORS header at all', async () => {
    const simple = await server.fetch('/health', { headers: { Origin: 'https://evil.example' } })
    expect(simple.status).toBe(200)
    expect(corsHeaders(simple)).toEqual([])
    expect(list(simple.headers.get('vary'))).toContain('origin') // caches keep the answers per origin apart

    const preflight = await fetch(`${server.url}/api/tasks`, {
      method: 'OPTIONS',
      headers: {
        Origin: 'http://localhost:3001',
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'authorization,content-type',
      },
    })
    await preflight.arrayBuffer()
    expect(corsHeaders(preflight)).toEqual([])
    expect(preflight.status).not.toBe(204)
  })

  test('when a request carries no Origin (curl, a server), then it gets no CORS header', async () => {
    const response = await server.fetch('/health')
    expect(corsHeaders(response)).toEqual([])
  })
})

describe('X-Request-Id', () => {
  test('when a well-formed id is sent, then it is echoed in the header and in an error body', async () => {
    for (const id of ['abc-123', 'trace.id:42_x', 'a'.repeat(128)]) {
      const response = await server.fetch('/health', { headers: { 'X-Request-Id': id } })
      expect(response.headers.get('x-request-id')).toBe(id)
    }
    const missing = await server.fetch('/no/such/route', { headers: { 'X-Request-Id': 'support-ticket-1' } })
    expect(missing.status).toBe(404)
    expect(missing.headers.get('x-request-id')).toBe('support-ticket-1')
    expect(await missing.json()).toMatchObject({ request_id: 'support-ticket-1' })
  })

  test('when none is sent, then a UUID is generated, returned, and is unique per request', async () => {
    const ids = await Promise.all(Array.from({ length: 5 }, async () => (await server.fetch('/health')).headers.get('x-request-id') ?? ''))
    for (const id of ids) expect(id).toMatch(uuid)
    expect(new Set(ids).size).toBe(ids.length)
  })

  test.each([
    ['200 characters', 'a'.repeat(200)],
    ['129 characters', 'b'.repeat(129)],
    ['spaces', 'two words'],
    ['markup', '<script>alert(1)</script>'],
    ['a tab', 'a\tb'],
    ['non-ASCII', 'caf\u00e9'],
  ])('when the sent id has %s, then it is replaced by a generated UUID', async (_, hostile) => {
    const response = await rawRequest(`GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: ${hostile}\r\nConnection: close\r\n\r\n`)
    expect(response.status).toBe(200)
    expect(response.headers['x-request-id']).toMatch(uuid)
  })

  test('when the sent id tries to smuggle a second header line, then it never comes back as sent', async () => {
    // obs-fold (a header continued on the next line) and a bare LF: the parser refuses or the id is replaced.
    for (const head of ['X-Request-Id: abc\r\n Injected: yes\r\n', 'X-Request-Id: abc\nInjected: yes\r\n']) {
      const response = await rawRequest(`GET /health HTTP/1.1\r\nHost: x\r\n${head}Connection: close\r\n\r\n`)
      if (response.status === 400) continue // refused by Node's HTTP parser before the app
      expect(response.headers['x-request-id']).toMatch(uuid)
      expect(response.headers.injected).toBeUndefined()
    }
  })
})

function list(header: string | null): string[] {
  return (header ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)
}

function corsHeaders(response: Response): string[] {
  const names: string[] = []
  response.headers.forEach((_, name) => {
    if (name.startsWith('access-control-')) names.push(name)
  })
  return names
}

/** A hand-written HTTP/1.1 request (fetch refuses the malformed headers these tests need). */
function rawRequest(text: string): Promise<{ status: number; headers: Record<string, string> }> {
  const { hostname, port } = new URL(server.url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(Buffer.from(text, 'latin1')))
    let received = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      received += chunk
    })
    socket.once('error', reject)
    socket.once('close', () => {
      const [head = ''] = received.split('\r\n\r\n')
      const [statusLine = '', ...lines] = head.split('\r\n')
      const headers: Record<string, string> = {}
      for (const line of lines) {
        const colon = line.indexOf(':')
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers })
    })
  })
}
