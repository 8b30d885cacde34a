// Bad path and query parameters, unknown routes and methods (SPEC.md "Endpoints" and "Errors"):
// a 422 names the parameter (location `path` or `query`), never a 500; an unknown route is a 404
// and a known path with another method a 405 with `Allow`, both problem+json; nothing changes.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { expectProblem, expectRefused, type Sandbox, type Style, sandbox, send, styles, type Task, tasksUrl } from './bad-input.helpers.js'
import { startServer, type TestServer } from './support/server.js'

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

const both = <T>(cases: [string, T][]): [string, T, Style][] =>
  cases.flatMap(([name, value]) => styles.map((s): [string, T, Style] => [`${name}, ${s}`, value, s]))

describe('422: task_id that is not a positive integer', () => {
  const operations: [string, { method: string; rest: string; body?: unknown }][] = [
    ['GET', { method: 'GET', rest: '' }],
    ['PUT', { method: 'PUT', rest: '', body: { title: 'changed' } }],
    ['PATCH', { method: 'PATCH', rest: '', body: { title: 'changed' } }],
    ['DELETE', { method: 'DELETE', rest: '' }],
    ['PATCH …/complete', { method: 'PATCH', rest: '/complete' }],
  ]
  const ids: [string, string][] = [
    ['0', '0'],
    ['-1', '-1'],
    ['abc', 'abc'],
    ['1.5', '1.5'],
    ['99999999999999999999 (beyond 2^53)', '99999999999999999999'],
    ['9007199254740992 (2^53)', '9007199254740992'],
    ['Infinity', 'Infinity'],
    ['1e999 (overflows to Infinity)', '1e999'],
    ['NaN', 'NaN'],
    ['true', 'true'],
    ['a space', '%20'],
    // Numerals that Number() reads as integers, but that are not how an id is written (issue 7).
    ['1e3 (exponent)', '1e3'],
    ['0x10 (hexadecimal)', '0x10'],
    ['01 (leading zero)', '01'],
    ['+1 (sign)', '%2B1'],
    ['1.0 (fraction point)', '1.0'],
    ['" 1" (leading space)', '%201'],
  ]
  const cases = ids.flatMap(([id, raw]) =>
    operations.map(([op, o]): [string, { raw: string } & typeof o] => [`${id} on ${op}`, { raw, ...o }]),
  )

  test.each(both(cases))('%s', async (_, { raw, method, rest, body }, style) => {
    const box = await sandbox(server)
    await expectRefused(server, box, tasksUrl(style, box.user_id, `/${raw}${rest}`), { method, body }, 422, ['path task_id'])
  })

  test.each(styles)('a path segment that is not valid percent-encoding → 422 on the path, %s', async (style) => {
    const box = await sandbox(server)
    await expectRefused(server, box, tasksUrl(style, box.user_id, '/%E0%A4%A'), { method: 'DELETE' }, 422, ['path'])
  })
})

describe('422: list query parameters', () => {
  const queries: [string, { query: string; where: string }][] = [
    ['status=done', { query: 'status=done', where: 'status' }],
    ['status=ALL (values are case-sensitive)', { query: 'status=ALL', where: 'status' }],
    ['status= (empty)', { query: 'status=', where: 'status' }],
    ['sort=importance', { query: 'sort=importance', where: 'sort' }],
    ['order=up', { query: 'order=up', where: 'order' }],
    ['limit=0', { query: 'limit=0', where: 'limit' }],
    ['limit=501', { query: 'limit=501', where: 'limit' }],
    ['limit=abc', { query: 'limit=abc', where: 'limit' }],
    ['limit=1.5', { query: 'limit=1.5', where: 'limit' }],
    ['limit=-1', { query: 'limit=-1', where: 'limit' }],
    ['limit=Infinity', { query: 'limit=Infinity', where: 'limit' }],
    ['limit=1e999', { query: 'limit=1e999', where: 'limit' }],
    ['limit=1e2 (exponent)', { query: 'limit=1e2', where: 'limit' }],
    ['limit=0x10 (hexadecimal)', { query: 'limit=0x10', where: 'limit' }],
    ['limit=010 (leading zero)', { query: 'limit=010', where: 'limit' }],
    ['limit=%2B5 (sign)', { query: 'limit=%2B5', where: 'limit' }],
    ['limit=5.0 (fraction point)', { query: 'limit=5.0', where: 'limit' }],
    ['q= (empty)', { query: 'q=', where: 'q' }],
    ['q of 201 characters', { query: `q=${'a'.repeat(201)}`, where: 'q' }],
    ['q of 201 emoji', { query: `q=${encodeURIComponent('😀'.repeat(201))}`, where: 'q' }],
    ['q containing %00', { query: 'q=milk%00', where: 'q' }],
    ['cursor that is not base64url', { query: 'cursor=!!!', where: 'cursor' }],
    ['cursor of 1025 characters', { query: `cursor=${'A'.repeat(1025)}`, where: 'cursor' }],
    ['cursor= (empty)', { query: 'cursor=', where: 'cursor' }],
    ['an unknown parameter', { query: 'page=2', where: 'page' }],
    ['a misspelt parameter', { query: 'stauts=all', where: 'stauts' }],
    ['a repeated parameter (status=all&status=pending)', { query: 'status=all&status=pending', where: 'status' }],
    ['a repeated limit', { query: 'limit=1&limit=2', where: 'limit' }],
    ['an array-style parameter (status[]=all)', { query: 'status[]=all', where: 'status' }],
    ['an object-style parameter (q[a]=b)', { query: 'q[a]=b', where: 'q' }],
  ]
  test.each(both(queries))('%s', async (_, { query, where }, style) => {
    const box = await sandbox(server)
    await expectRefused(server, box, tasksUrl(style, box.user_id, `?${query}`), {}, 422, [`query ${where}`])
  })
})

describe('422: cursors that do not come from this list', () => {
  const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
  const stamp = '2026-01-01T00:00:00.000Z'
  const cursors: [string, string][] = [
    ['garbage in the alphabet', 'abc'],
    ['base64url of text that is not JSON', b64('not json')],
    ['base64url of an empty array', b64([])],
    ['base64url of an object', b64({ sort: 'created_at', id: 1 })],
    ['the wrong sort value type (not a timestamp)', b64(['created_at', 'x', 1])],
    ['an impossible timestamp', b64(['created_at', '2026-13-45T99:99:99.000Z', 1])],
    ['a null sort value', b64(['created_at', null, 1])],
    ['id 0', b64(['created_at', stamp, 0])],
    ['a fractional id', b64(['created_at', stamp, 1.5])],
    ['an id as a string', b64(['created_at', stamp, '1'])],
    ['an id beyond 2^53', b64(['created_at', stamp, 1e300])],
    ['four members', b64(['created_at', stamp, 1, 2])],
    ['a sort the list does not have', b64(['priority', stamp, 1])],
    ['__proto__ as the sort', b64(['__proto__', stamp, 1])],
  ]
  test.each(both(cursors))('%s', async (_, cursor, style) => {
    const box = await sandbox(server)
    await expectRefused(server, box, tasksUrl(style, box.user_id, `?cursor=${cursor}`), {}, 422, ['query cursor'])
  })

  test.each(styles)('a title cursor with a NUL in its value → 422, %s', async (style) => {
    const box = await sandbox(server)
    await expectRefused(server, box, tasksUrl(style, box.user_id, `?sort=title&cursor=${b64(['title', 'a\u0000', 1])}`), {}, 422, [
      'query cursor',
    ])
  })

  // A real cursor, from a Link header of a list sorted by title, is valid only with sort=title.
  async function titleCursor(box: Sandbox, style: Style): Promise<string> {
    const api = server.client(box.token)
    await api.POST('/api/tasks', { body: { title: 'another' } })
    const sent = await send(server, tasksUrl(style, box.user_id, '?sort=title&limit=1'), { token: box.token })
    expect(sent.status).toBe(200)
    const link = sent.headers.get('link') ?? ''
    const next = /^<([^>]+)>;\s*rel="next"$/.exec(link)?.[1]
    if (!next) throw new Error(`no next link: ${link}`)
    const cursor = new URL(next, server.url).searchParams.get('cursor')
    if (!cursor) throw new Error(`no cursor in ${next}`)
    const again = await send(server, tasksUrl(style, box.user_id, `?sort=title&limit=1&cursor=${cursor}`), { token: box.token })
    expect(again.status).toBe(200)
    expect((again.body as Task[]).length).toBe(1)
    return cursor
  }

  test.each(styles)('a cursor made for sort=title reused with sort=created_at → 422, %s', async (style) => {
    const box = await sandbox(server)
    const cursor = await titleCursor(box, style)
    await expectRefused(server, box, tasksUrl(style, box.user_id, `?sort=created_at&limit=1&cursor=${cursor}`), {}, 422, ['query cursor'])
  })

  test.each(styles)('a cursor made for sort=title reused with the default sort → 422, %s', async (style) => {
    const box = await sandbox(server)
    const cursor = await titleCursor(box, style)
    await expectRefused(server, box, tasksUrl(style, box.user_id, `?cursor=${cursor}`), {}, 422, ['query cursor'])
  })

  test.each(styles)('a cursor made for sort=title reused with sort=updated_at → 422, %s', async (style) => {
    const box = await sandbox(server)
    const cursor = await titleCursor(box, style)
    await expectRefused(server, box, tasksUrl(style, box.user_id, `?sort=updated_at&cursor=${cursor}`), {}, 422, ['query cursor'])
  })
})

describe('404: a route the contract does not declare', () => {
  const paths: [string, string][] = [
    ['/nope', '/nope'],
    ['/api', '/api'],
    ['/api/tasks/1/nope', '/api/tasks/1/nope'],
    ['/api/{user_id}/tasks/1/complete/again', '/api/USER/tasks/1/complete/again'],
    ['/api/{user_id} (no tasks)', '/api/USER'],
    ['/api//tasks (empty user id)', '/api//tasks'],
    ['/docs/nope.html (outside the assets prefix)', '/docs/nope.html'],
    ['/tasks', '/tasks'],
  ]
  test.each(paths)('%s → 404 problem+json, not HTML', async (_, path) => {
    const box = await sandbox(server)
    for (const token of [box.token, undefined]) {
      const before = await box.rows()
      const sent = await send(server, path.replace('USER', encodeURIComponent(box.user_id)), { token })
      expectProblem(sent, 404)
      expect(String((sent.body as { detail: string }).detail)).not.toMatch(/<html|<pre|Cannot GET/i)
      expect(await box.rows()).toEqual(before)
    }
  })

  test('a POST to an unknown route is 404 too, and creates nothing', async () => {
    const box = await sandbox(server)
    await expectRefused(server, box, '/api/task', { method: 'POST', body: { title: 'x' } }, 404)
  })
})

describe('405: a known path with a method it does not declare, with Allow', () => {
  const allowOf = (header: string | null) =>
    (header ?? '')
      .split(',')
      .map((m) => m.trim())
      .filter(Boolean)
      .sort()
  const cases: [string, { method: string; rest: (id: number) => string; allow: string[]; body?: unknown }][] = [
    [
      'POST /api/tasks/1',
      { method: 'POST', rest: (id) => `/${id}`, allow: ['DELETE', 'GET', 'HEAD', 'PATCH', 'PUT'], body: { title: 'x' } },
    ],
    ['PUT /api/tasks', { method: 'PUT', rest: () => '', allow: ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST'], body: { title: 'x' } }],
    ['POST /api/tasks/counts', { method: 'POST', rest: () => '/counts', allow: ['GET', 'HEAD'], body: { title: 'x' } }],
    ['GET …/complete', { method: 'GET', rest: (id) => `/${id}/complete`, allow: ['PATCH'] }],
    ['PUT …/complete', { method: 'PUT', rest: (id) => `/${id}/complete`, allow: ['PATCH'], body: { completed: true } }],
    ['POST …/complete', { method: 'POST', rest: (id) => `/${id}/complete`, allow: ['PATCH'] }],
    ['DELETE …/complete', { method: 'DELETE', rest: (id) => `/${id}/complete`, allow: ['PATCH'] }],
  ]
  test.each(both(cases))('%s', async (_, { method, rest, allow, body }, style) => {
    const box = await sandbox(server)
    const before = await box.rows()
    const sent = await send(server, tasksUrl(style, box.user_id, rest(box.task.id)), { method, token: box.token, body })
    expectProblem(sent, 405)
    expect(allowOf(sent.headers.get('allow'))).toEqual(allow)
    expect(await box.rows()).toEqual(before)
  })

  test.each([
    ['POST /health', '/health', ['GET', 'HEAD']],
    ['DELETE /openapi.json', '/openapi.json', ['GET', 'HEAD']],
    ['PUT /docs', '/docs', ['GET', 'HEAD']],
  ])('%s', async (_, path, allow) => {
    const sent = await send(server, path, { method: path === '/health' ? 'POST' : path === '/docs' ? 'PUT' : 'DELETE' })
    expectProblem(sent, 405)
    expect(allowOf(sent.headers.get('allow'))).toEqual(allow)
  })

  test('an unusual method (PROPFIND) on a known path is 405 as well', async () => {
    const box = await sandbox(server)
    await expectRefused(server, box, '/api/tasks', { method: 'PROPFIND' }, 405)
  })
})

// Organizing tasks (issue 8): the list's new filters and sorts, and the same filters on counts and
// the bulk operations, are checked by the contract before anything is read or written.
describe('422: the organize query parameters, on the list, counts and bulk writes', () => {
  interface Endpoint {
    method: string
    rest: string
    /** What the endpoint needs besides the parameter under test. */
    base: string
    body?: unknown
  }
  const endpoints: [string, Endpoint][] = [
    ['list', { method: 'GET', rest: '', base: '' }],
    ['counts', { method: 'GET', rest: '/counts', base: '' }],
    ['bulk PATCH', { method: 'PATCH', rest: '', base: '', body: { completed: true } }],
    ['bulk DELETE', { method: 'DELETE', rest: '', base: 'status=all&' }],
  ]
  const queries: [string, { query: string; where: string }][] = [
    ['due_before=yesterday', { query: 'due_before=yesterday', where: 'due_before' }],
    ['due_after=2026-13-01T00:00:00Z (no 13th month)', { query: 'due_after=2026-13-01T00:00:00Z', where: 'due_after' }],
    ['due_before without an offset', { query: 'due_before=2026-01-01T00:00:00', where: 'due_before' }],
    ['due_after a date only', { query: 'due_after=2026-01-01', where: 'due_after' }],
    ['due_before= (empty)', { query: 'due_before=', where: 'due_before' }],
    ['due_after repeated', { query: 'due_after=2026-01-01T00:00:00Z&due_after=2026-02-01T00:00:00Z', where: 'due_after' }],
    ['priority=critical', { query: 'priority=critical', where: 'priority' }],
    ['priority=HIGH (values are case-sensitive)', { query: 'priority=HIGH', where: 'priority' }],
    ['priority=high&priority=bogus', { query: 'priority=high&priority=bogus', where: 'priority' }],
    ['priority= (empty)', { query: 'priority=', where: 'priority' }],
    ['tag= (empty)', { query: 'tag=', where: 'tag' }],
    ['a blank tag', { query: 'tag=%20%20', where: 'tag' }],
    ['a tag of 51 characters', { query: `tag=${'t'.repeat(51)}`, where: 'tag' }],
    ['a tag containing %00', { query: 'tag=a%00b', where: 'tag' }],
    ['21 tags', { query: Array.from({ length: 21 }, (_, i) => `tag=t${i}`).join('&'), where: 'tag' }],
  ]
  const cases = endpoints.flatMap(([name, endpoint]) =>
    queries.map(([q, c]): [string, Endpoint & { query: string; where: string }] => [`${q} on ${name}`, { ...endpoint, ...c }]),
  )
  test.each(both(cases))('%s', async (_, { method, rest, base, body, query, where }, style) => {
    const box = await sandbox(server)
    await expectRefused(server, box, tasksUrl(style, box.user_id, `${rest}?${base}${query}`), { method, body }, 422, [`query ${where}`])
  })

  test.each(
    both([
      ['sort=importance', 'sort=importance'],
      ['sort=due (a prefix)', 'sort=due'],
      ['sort=Priority', 'sort=Priority'],
    ]),
  )('%s on the list → 422 naming sort', async (_, query, style) => {
    const box = await sandbox(server)
    await expectRefused(server, box, tasksUrl(style, box.user_id, `?${query}`), {}, 422, ['query sort'])
  })

  // Counts and bulk writes take the list's filters, not its paging or order.
  const unpaged: [string, Endpoint & { query: string; where: string }][] = endpoints
    .filter(([name]) => name !== 'list')
    .flatMap(([name, endpoint]) =>
      ['sort=due_date', 'order=asc', 'limit=10', 'cursor=abc'].map((query): [string, Endpoint & { query: string; where: string }] => [
        `${query} on ${name}`,
        { ...endpoint, query, where: query.split('=')[0] as string },
      ]),
    )
  test.each(both(unpaged))(
    '%s → 422, the parameter is not one of its own',
    async (_, { method, rest, base, body, query, where }, style) => {
      const box = await sandbox(server)
      await expectRefused(server, box, tasksUrl(style, box.user_id, `${rest}?${base}${query}`), { method, body }, 422, [`query ${where}`])
    },
  )
})

describe('422: bulk DELETE needs status, so that deleting everything is asked for explicitly', () => {
  test.each(
    both([
      ['no query at all', ''],
      ['only a tag filter', '?tag=work'],
      ['only priority and due filters', '?priority=low&due_before=2030-01-01T00:00:00Z'],
      ['status=done', '?status=done'],
      ['status= (empty)', '?status='],
      ['status twice', '?status=all&status=completed'],
    ]),
  )('%s → 422 naming status, nothing deleted', async (_, query, style) => {
    const box = await sandbox(server)
    await expectRefused(server, box, tasksUrl(style, box.user_id, query), { method: 'DELETE' }, 422, ['query status'])
  })
})

// Date-times the format admits but PostgreSQL cannot hold (year 0) or JavaScript's Date cannot read
// (a leap second): as filters they are a 422 naming the parameter or a plain answer, never a 500.
describe('due filters at the edges of what can be stored', () => {
  test.each(
    both([
      ['due_before=0000-01-01T00:00:00Z', 'due_before=0000-01-01T00:00:00Z'],
      ['due_after=9999-12-31T23:30:00-01:00 (year 10000 in UTC)', 'due_after=9999-12-31T23:30:00-01:00'],
      ['due_after=2026-12-31T23:59:60Z (a leap second)', 'due_after=2026-12-31T23:59:60Z'],
    ]),
  )('%s → 200 or 422 naming it', async (_, query, style) => {
    const box = await sandbox(server)
    for (const rest of ['', '/counts']) {
      const sent = await send(server, tasksUrl(style, box.user_id, `${rest}?${query}`), { token: box.token })
      if (sent.status !== 200) expectProblem(sent, 422, [`query ${query.split('=')[0]}` as const])
    }
  })
})
