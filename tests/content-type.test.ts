// Content-Type (SPEC.md, "Resource: Task"): a JSON body is accepted with any charset parameter; a
// body of another media type, or of none, is 415; a request without a body is accepted whatever
// Content-Type it claims (real frontends send application/json on GET, DELETE and body-less PATCH).
import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import {
  complete,
  create,
  cross,
  expectNoLeak,
  expectProblem,
  expectRefused,
  type Sandbox,
  type Style,
  sandbox,
  send,
  styles,
  success,
  type Task,
  tasksUrl,
  urlOf,
  type Write,
} from './bad-input.helpers.js'
import { violations } from './support/contract.js'
import { startServer, type TestServer } from './support/server.js'

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

const bodyOf = (w: Write) => (w === complete ? { completed: true } : { title: 'café ☕', description: 'naïve', completed: true })

describe('415: a body that is not application/json', () => {
  const types: [string, string | null][] = [
    ['text/plain', 'text/plain'],
    ['text/plain; charset=utf-8', 'text/plain; charset=utf-8'],
    ['application/x-www-form-urlencoded', 'application/x-www-form-urlencoded'],
    ['multipart/form-data', 'multipart/form-data; boundary=x'],
    ['application/xml', 'application/xml'],
    ['text/json', 'text/json'],
    ['no Content-Type at all', null],
    // A header with no media type does not parse: the body must be refused, not ignored (issue 7:
    // …/complete used to skip it and toggle instead of setting `completed`).
    ['an empty media type with a charset (; charset=utf-8)', '; charset=utf-8'],
    ['an empty media type (;)', ';'],
    ['an empty media type with a parameter (;a=b)', ';a=b'],
    ['a media type without a subtype (application)', 'application'],
  ]
  test.each(cross(types))('%s', async (_, type, w, style) => {
    const box = await sandbox(server)
    const body = type === 'application/x-www-form-urlencoded' ? 'title=Buy+milk' : JSON.stringify(bodyOf(w))
    await expectRefused(server, box, urlOf(box, w, style), { method: w.method, body: new TextEncoder().encode(body), type }, 415)
  })

  test.each(styles)('a Content-Encoding the server cannot decode → 415, %s', async (style) => {
    const box = await sandbox(server)
    const url = tasksUrl(style, box.user_id)
    await expectRefused(server, box, url, { method: 'POST', body: { title: 'x' }, headers: { 'Content-Encoding': 'compress' } }, 415)
  })
})

describe('accepted: application/json with any charset parameter (JSON is UTF-8 anyway)', () => {
  const types: [string, string][] = [
    ['charset=utf-8', 'application/json; charset=utf-8'],
    ['charset=UTF-8', 'application/json; charset=UTF-8'],
    ['charset=utf8', 'application/json; charset=utf8'],
    ['charset=iso-8859-1', 'application/json; charset=iso-8859-1'],
    ['no space before the parameter', 'application/json;charset=utf-8'],
    ['a quoted charset', 'application/json; charset="utf-8"'],
    ['upper-case media type', 'APPLICATION/JSON; Charset=UTF-8'],
  ]
  test.each(cross(types))('%s', async (_, type, w, style) => {
    const box = await sandbox(server)
    const sent = await send(server, urlOf(box, w, style), { method: w.method, token: box.token, body: bodyOf(w), type })
    expect(sent.status).toBe(success(w))
    expect(sent.body).toMatchObject(bodyOf(w))
    const [row] = await server.sql`select title, description, completed from tasks where id = ${(sent.body as Task).id}`
    expect(row).toMatchObject(w === complete ? { completed: true } : bodyOf(w))
  })
})

// What a browser or fetch sends: fetch adds Content-Length: 0 to a body-less PATCH, and nothing to
// a body-less GET or DELETE.
describe('accepted: no body, whatever the Content-Type', () => {
  const types = ['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded']
  const cases = types.flatMap((type) => styles.map((style): [string, string, Style] => [`${type}, ${style}`, type, style]))

  test.each(cases)('GET the list: %s', async (_, type, style) => {
    const box = await sandbox(server)
    const sent = await send(server, tasksUrl(style, box.user_id), { token: box.token, type })
    expect(sent.status).toBe(200)
    expect(sent.body).toEqual([box.task])
  })

  test.each(cases)('GET a task: %s', async (_, type, style) => {
    const box = await sandbox(server)
    const sent = await send(server, tasksUrl(style, box.user_id, `/${box.task.id}`), { token: box.token, type })
    expect(sent.status).toBe(200)
    expect(sent.body).toEqual(box.task)
  })

  test.each(cases)('PATCH …/complete toggles: %s', async (_, type, style) => {
    const box = await sandbox(server)
    const sent = await send(server, tasksUrl(style, box.user_id, `/${box.task.id}/complete`), { method: 'PATCH', token: box.token, type })
    expect(sent.status).toBe(200)
    expect(sent.body).toMatchObject({ id: box.task.id, completed: true })
  })

  test.each(cases)('DELETE: %s', async (_, type, style) => {
    const box = await sandbox(server)
    const sent = await send(server, tasksUrl(style, box.user_id, `/${box.task.id}`), { method: 'DELETE', token: box.token, type })
    expect(sent.status).toBe(204)
    expect(await box.rows()).toEqual([])
  })

  test.each(cases)('POST without a body is a 422 for the missing title, not a 415: %s', async (_, type, style) => {
    const box = await sandbox(server)
    await expectRefused(server, box, tasksUrl(style, box.user_id), { method: 'POST', type }, 422, ['body /title'])
  })

  test.each(cases)('PATCH without a body is a 422 (at least one field), not a 415: %s', async (_, type, style) => {
    const box = await sandbox(server)
    await expectRefused(server, box, tasksUrl(style, box.user_id, `/${box.task.id}`), { method: 'PATCH', type }, 422, ['body'])
  })
})

// Without Content-Length or Transfer-Encoding at all (an HTTP/1.1 request that simply has no body),
// which fetch cannot send: written on a socket, and its answer checked against the contract here.
describe('accepted: no body and no framing headers at all, whatever the Content-Type', () => {
  async function raw(box: Sandbox, method: string, path: string, type: string) {
    const { port } = new URL(server.url)
    const request = [
      `${method} ${path} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      `Authorization: Bearer ${box.token}`,
      `Content-Type: ${type}`,
      'Connection: close',
      '',
      '',
    ].join('\r\n')
    const text = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => socket.write(request))
      let data = ''
      socket.setEncoding('utf8')
      socket.on('data', (chunk) => {
        data += chunk
      })
      socket.on('end', () => resolve(data))
      socket.on('error', reject)
    })
    const [head = '', body = ''] = text.split('\r\n\r\n')
    const [statusLine = '', ...lines] = head.split('\r\n')
    const status = Number(statusLine.split(' ')[1])
    const headers = new Headers(lines.map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()] as [string, string]))
    expect(headers.get('transfer-encoding')).toBeNull() // Content-Length framing: the body is what follows the head
    expect(violations(method, path, { status, headers, body })).toEqual([])
    if (status >= 400) expectNoLeak(body)
    return { status, body: body === '' ? undefined : JSON.parse(body) }
  }

  test.each(styles)('PATCH …/complete with text/plain toggles, %s', async (style) => {
    const box = await sandbox(server)
    const answer = await raw(box, 'PATCH', tasksUrl(style, box.user_id, `/${box.task.id}/complete`), 'text/plain')
    expect(answer).toMatchObject({ status: 200, body: { completed: true } })
  })

  test.each(styles)('PATCH …/complete with application/json toggles, %s', async (style) => {
    const box = await sandbox(server)
    const answer = await raw(box, 'PATCH', tasksUrl(style, box.user_id, `/${box.task.id}/complete`), 'application/json')
    expect(answer).toMatchObject({ status: 200, body: { completed: true } })
  })

  test.each(styles)('DELETE with application/json, %s', async (style) => {
    const box = await sandbox(server)
    const answer = await raw(box, 'DELETE', tasksUrl(style, box.user_id, `/${box.task.id}`), 'application/json')
    expect(answer.status).toBe(204)
    expect(await box.rows()).toEqual([])
  })
})

describe('the body decides, not the header: refused bodies stay refused whatever the charset', () => {
  test.each(cross([['charset=utf-8', 'application/json; charset=utf-8']], [create, complete]))('400 with %s', async (_, type, w, style) => {
    const box = await sandbox(server)
    await expectRefused(server, box, urlOf(box, w, style), { method: w.method, body: '{"title": ', type }, 400)
  })

  test.each(cross([['charset=iso-8859-1', 'application/json; charset=iso-8859-1']], [create, complete]))(
    '422 with %s',
    async (_, type, w, style) => {
      const box = await sandbox(server)
      await expectRefused(server, box, urlOf(box, w, style), { method: w.method, body: '[]', type }, 422, ['body'])
    },
  )

  test.each(styles)('413 with charset=utf-8, %s', async (style) => {
    const box = await sandbox(server)
    const body = { title: 'x', description: 'y'.repeat(70 * 1024) }
    await expectRefused(server, box, tasksUrl(style, box.user_id), { method: 'POST', body, type: 'application/json; charset=utf-8' }, 413)
  })

  test.each(styles)('an empty body with Content-Type text/plain on POST is judged as no body: 422, %s', async (style) => {
    const box = await sandbox(server)
    const sent = await send(server, tasksUrl(style, box.user_id), { method: 'POST', token: box.token, body: '', type: 'text/plain' })
    expectProblem(sent, 422, ['body /title'])
  })
})
