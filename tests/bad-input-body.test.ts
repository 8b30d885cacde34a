// Bad request bodies (SPEC.md "Resource: Task" and "Errors"): each is refused with the status and
// problem type SPEC gives, a 422 names the offending member, and the database is left exactly as it
// was. Every write is tried in both URL spellings. The limits are also shown to admit what they
// should (exactly 200 characters of title, 1000 of description, counted in characters).
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import {
  complete,
  create,
  cross,
  expectProblem,
  expectRefused,
  replace,
  type Sandbox,
  type Style,
  sandbox,
  send,
  styles,
  success,
  type Task,
  targets,
  tasksUrl,
  taskWrites,
  update,
  urlOf,
  type Where,
  type Write,
} from './bad-input.helpers.js'
import { startServer, type TestServer } from './support/server.js'

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

const refused = async (w: Write, style: Style, body: unknown, status: number, where: Where[] = []) => {
  const box = await sandbox(server)
  return expectRefused(server, box, urlOf(box, w, style), { method: w.method, body }, status, where)
}

describe('400: a body that is not parseable JSON', () => {
  const bodies: [string, string][] = [
    ['truncated', '{"title": "Buy milk"'],
    ['a trailing comma', '{"title": "Buy milk",}'],
    ['single quotes', "{'title': 'Buy milk'}"],
    ['an unquoted key', '{title: "Buy milk"}'],
    ['trailing garbage', '{"title": "Buy milk"} x'],
    ['NaN', '{"title": "Buy milk", "completed": NaN}'],
  ]
  test.each(cross(bodies))('%s', async (_, body, w, style) => {
    const problem = await refused(w, style, body, 400)
    expect(problem.detail).toMatch(/^The request body is not valid JSON/)
  })
})

describe('422: valid JSON that is not an object', () => {
  const bodies: [string, string][] = [
    ['a string', '"x"'],
    ['a number', '5'],
    ['an array', '[]'],
    ['null', 'null'],
    ['true', 'true'],
  ]
  test.each(cross(bodies))('%s', async (_, body, w, style) => {
    await refused(w, style, body, 422, ['body'])
  })
})

describe('413: a body over 64 KiB', () => {
  const padded = (w: Write, bytes: number) => {
    const base = w === complete ? { completed: true, pad: '' } : { title: 'x', description: '' }
    const room = bytes - JSON.stringify(base).length
    return JSON.stringify(w === complete ? { completed: true, pad: 'y'.repeat(room) } : { title: 'x', description: 'y'.repeat(room) })
  }

  test.each(targets())('65537 bytes → 413: %s', async (_, w, style) => {
    const body = padded(w, 64 * 1024 + 1)
    expect(Buffer.byteLength(body)).toBe(65537)
    await refused(w, style, body, 413)
  })

  test.each(targets())('exactly 64 KiB is read, then judged by the contract → 422: %s', async (_, w, style) => {
    const body = padded(w, 64 * 1024)
    expect(Buffer.byteLength(body)).toBe(65536)
    await refused(w, style, body, 422, [w === complete ? 'body /pad' : 'body /description'])
  })

  test.each(targets(taskWrites))(
    'the limit counts bytes: 16,000 emoji (64,000 bytes) → 422, 17,000 (68,000 bytes) → 413: %s',
    async (_, w, style) => {
      await refused(w, style, { title: 'x', description: '😀'.repeat(16_000) }, 422, ['body /description'])
      await refused(w, style, { title: 'x', description: '😀'.repeat(17_000) }, 413)
    },
  )
})

describe('422: title', () => {
  const bad: [string, unknown, Where[]][] = [
    ['empty', '', ['body /title']],
    ['spaces only', '   ', ['body /title']],
    ['a tab only', '\t', ['body /title']],
    ['newlines only', '\n\r\n', ['body /title']],
    ['mixed whitespace', ' \t\n\r\v\f ', ['body /title']],
    ['U+00A0 no-break spaces only', '\u00a0\u00a0', ['body /title']],
    ['Unicode spaces only (U+2003, U+3000, U+2028, U+FEFF)', '\u2003\u3000\u2028\ufeff', ['body /title']],
    ['201 characters', 'a'.repeat(201), ['body /title']],
    ['201 emoji', '😀'.repeat(201), ['body /title']],
    ['a NUL character', 'Buy\u0000milk', ['body /title']],
    ['only a NUL character', '\u0000', ['body /title']],
    ['a number', 5, ['body /title']],
    ['a boolean', true, ['body /title']],
    ['null', null, ['body /title']],
    ['an array', ['Buy milk'], ['body /title']],
    ['an object', { text: 'Buy milk' }, ['body /title']],
  ]
  test.each(bad.flatMap(([name, title, where]) => cross([[name, { title, where }]], taskWrites)))(
    '%s',
    async (_, { title, where }, w, style) => {
      await refused(w, style, { title }, 422, where)
    },
  )

  test.each(targets([create, replace]))('missing → 422: %s', async (_, w, style) => {
    await refused(w, style, { description: 'no title', completed: true }, 422, ['body /title'])
  })

  const good: [string, string][] = [
    ['exactly 200 characters', 'a'.repeat(200)],
    ['200 emoji (800 bytes: characters are counted, not bytes)', '😀'.repeat(200)],
    ['200 characters mixing scripts and astral characters', `${'é中𝄞'.repeat(66)}ab`],
    ['text with whitespace around it', '  \u00a0Buy milk\t '],
  ]
  test.each(cross(good, taskWrites))('accepted: %s', async (_, title, w, style) => {
    const box = await sandbox(server)
    const sent = await send(server, urlOf(box, w, style), { method: w.method, token: box.token, body: { title } })
    expect(sent.status).toBe(success(w))
    expect((sent.body as Task).title).toBe(title)
    const [row] = await server.sql`select char_length(title) as length from tasks where id = ${(sent.body as Task).id}`
    expect(row?.length).toBe([...title].length)
  })
})

describe('422: description', () => {
  const bad: [string, unknown][] = [
    ['1001 characters', 'd'.repeat(1001)],
    ['1001 emoji', '😀'.repeat(1001)],
    ['a NUL character', 'two\u0000litres'],
    ['a number', 2],
    ['a boolean', false],
    ['an array', ['2 litres']],
    ['an object', {}],
  ]
  test.each(cross(bad, taskWrites))('%s', async (_, description, w, style) => {
    await refused(w, style, { title: 'Buy milk', description }, 422, ['body /description'])
  })

  const good: [string, string | null][] = [
    ['exactly 1000 characters', 'd'.repeat(1000)],
    ['1000 emoji (4000 bytes)', '😀'.repeat(1000)],
    ['null', null],
  ]
  test.each(cross(good, taskWrites))('accepted: %s', async (_, description, w, style) => {
    const box = await sandbox(server)
    const sent = await send(server, urlOf(box, w, style), { method: w.method, token: box.token, body: { title: 'Buy milk', description } })
    expect(sent.status).toBe(success(w))
    expect((sent.body as Task).description).toBe(description)
  })
})

describe('422: completed is a boolean, never coerced', () => {
  const values: [string, unknown][] = [
    ['"true"', 'true'],
    ['"false"', 'false'],
    ['"yes"', 'yes'],
    ['1', 1],
    ['0', 0],
    ['null', null],
    ['[]', []],
  ]
  test.each(cross(values))('completed: %s', async (_, completed, w, style) => {
    const body = w === complete ? { completed } : { title: 'Buy milk', completed }
    await refused(w, style, body, 422, ['body /completed'])
  })
})

describe('422: a property the contract does not declare is refused, never dropped', () => {
  const extras: [string, Record<string, unknown>, Where][] = [
    ['unknown', { importance: 'high' }, 'body /importance'],
    ['a differently cased priority', { Priority: 'high' }, 'body /Priority'],
    ['a differently cased title', { Title: 'Buy milk' }, 'body /Title'],
    ['id (set by the server)', { id: 1 }, 'body /id'],
    ['user_id (the token decides)', { user_id: 'someone-else' }, 'body /user_id'],
    ['created_at (set by the server)', { created_at: '2020-01-01T00:00:00.000Z' }, 'body /created_at'],
    ['updated_at (set by the server)', { updated_at: '2020-01-01T00:00:00.000Z' }, 'body /updated_at'],
  ]
  test.each(extras.flatMap(([name, extra, where]) => cross([[name, { extra, where }]])))('%s', async (_, { extra, where }, w, style) => {
    await refused(w, style, { ...w.valid, ...extra }, 422, [where])
  })

  test.each(targets([complete]))('title on …/complete → 422: %s', async (_, w, style) => {
    await refused(w, style, { completed: true, title: 'renamed' }, 422, ['body /title'])
  })

  test.each(targets([complete]))('description on …/complete → 422: %s', async (_, w, style) => {
    await refused(w, style, { description: 'changed' }, 422, ['body /description'])
  })
})

describe('422: a pattern failure is worded by the contract (x-pattern-message), never shown as a regex', () => {
  test.each([
    ['a blank title', { title: ' \t ' }, '/title', 'must not be blank or contain NUL characters'],
    ['a NUL in the description', { title: 'fine', description: 'a\u0000b' }, '/description', 'must not contain NUL characters'],
  ])('%s', async (_, body, path, message) => {
    const box = await sandbox(server)
    const problem = await expectRefused(server, box, tasksUrl('token style', box.user_id), { method: 'POST', body }, 422, [`body ${path}`])
    expect(problem.errors).toEqual([{ location: 'body', path, message }])
    expect(problem.detail).toBe(`body ${path}: ${message}`)
  })
})

describe('422: errors lists every failure of the body at once', () => {
  test.each(targets(taskWrites))(
    'a blank title, a long description, a string completed and an unknown key → four errors: %s',
    async (_, w, style) => {
      const body = { title: '   ', description: 'x'.repeat(1001), completed: 'yes', priority: 1 }
      await refused(w, style, body, 422, ['body /title', 'body /description', 'body /completed', 'body /priority'])
    },
  )
})

describe('422: PATCH needs at least one field', () => {
  test.each(targets([update]))('{} → 422: %s', async (_, w, style) => {
    await refused(w, style, {}, 422, ['body'])
  })
})

// JSON can spell strings that are not Unicode text, and a body can carry bytes that are not UTF-8:
// both would be stored as U+FFFD (PostgreSQL holds valid UTF-8 only), so both are refused, naming
// the field, rather than changed silently (issue 7).
describe('422: text that is not valid Unicode or not UTF-8', () => {
  const raw = (prefix: string, bytes: number[], suffix: string) =>
    new Uint8Array([...Buffer.from(prefix), ...bytes, ...Buffer.from(suffix)])
  const bad: [string, (w: Write) => string | Uint8Array, Where[]][] = [
    ['a lone high surrogate in title', () => '{"title":"Buy \\ud800 milk"}', ['body /title']],
    ['a lone low surrogate at the end of title', () => '{"title":"Buy milk\\udc00"}', ['body /title']],
    ['surrogates in the wrong order in description', () => '{"title":"x","description":"\\ude00\\ud83d"}', ['body /description']],
    [
      'a lone surrogate in title and in description',
      () => '{"title":"\\ud800","description":"\\udfff"}',
      ['body /title', 'body /description'],
    ],
    ['an invalid UTF-8 byte (0xff) in title', () => raw('{"title":"Buy ', [0xff], ' milk"}'), ['body /title']],
    ['a truncated UTF-8 sequence in description', () => raw('{"title":"x","description":"caf', [0xc3], '"}'), ['body /description']],
    ['an overlong encoding of "/" in title', () => raw('{"title":"a', [0xc0, 0xaf], 'b"}'), ['body /title']],
    ['a UTF-8-encoded surrogate (CESU) in title', () => raw('{"title":"a', [0xed, 0xa0, 0x80], 'b"}'), ['body /title']],
  ]
  test.each(bad.flatMap(([name, body, where]) => cross([[name, { body, where }]], taskWrites)))(
    '%s',
    async (_, { body, where }, w, style) => {
      await refused(w, style, body(w), 422, where)
    },
  )

  test.each(targets([create]))('a valid escaped surrogate pair and a literal U+FFFD are accepted: %s', async (_, w, style) => {
    const box = await sandbox(server)
    const sent = await send(server, urlOf(box, w, style), { method: 'POST', token: box.token, body: '{"title":"\\ud83d\\ude00 \ufffd"}' })
    expect(sent.status).toBe(201)
    expect((sent.body as Task).title).toBe('😀 \ufffd')
  })
})

describe('what the write would have changed stays unchanged (byte for byte, updated_at included)', () => {
  test.each(targets([replace, update, complete]))('a refused %s leaves the task as it was', async (_, w, style) => {
    const box = await sandbox(server)
    const body = w === complete ? { completed: 'yes' } : { title: 'changed', description: 'changed', completed: 'true' }
    await expectRefused(server, box, urlOf(box, w, style), { method: w.method, body }, 422, ['body /completed'])
    const { data } = await server.client(box.token).GET('/api/tasks/{task_id}', { params: { path: { task_id: box.task.id } } })
    expect(data).toEqual(box.task)
  })
})

// A bounded table of hostile requests: the answer is one of SPEC's 4xx, never a 500, and nothing
// changes. Prototype pollution is checked on this very process, which runs the app.
describe('hostile requests', () => {
  type Hostile = {
    method?: string
    path?: (box: Sandbox) => string
    body?: string | Uint8Array
    type?: string
    headers?: Record<string, string>
  }
  const token =
    (rest = '') =>
    (box: Sandbox) =>
      tasksUrl('token style', box.user_id, rest)
  const onTask =
    (rest = '') =>
    (box: Sandbox) =>
      tasksUrl('token style', box.user_id, `/${box.task.id}${rest}`)
  const post = (body: string): Hostile => ({ method: 'POST', body })
  const patch = (body: string): Hostile => ({ method: 'PATCH', path: onTask(), body })
  const get = (path: (box: Sandbox) => string): Hostile => ({ path })

  const hostile: [string, Hostile][] = [
    ['arrays nested 30,000 deep in title', post(`{"title":${'['.repeat(30_000)}${']'.repeat(30_000)}}`)],
    ['objects nested 10,000 deep', post(`${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`)],
    ['objects nested 5,000 deep under title', post(`{"title":${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}}`)],
    ['a number beyond double range', post('{"title":"x","completed":1e999}')],
    ['a 400-digit number as title', post(`{"title":${'9'.repeat(400)}}`)],
    ['negative zero as completed', post('{"title":"x","completed":-0}')],
    ['a huge integer as description', post('{"title":"x","description":123456789012345678901234567890}')],
    ['__proto__ with a title inside', post('{"__proto__":{"title":"hacked","polluted":true}}')],
    ['__proto__ next to a title', post('{"title":"x","__proto__":{"polluted":true}}')],
    ['constructor.prototype', post('{"title":"x","constructor":{"prototype":{"polluted":true}}}')],
    ['prototype', post('{"title":"x","prototype":{"polluted":true}}')],
    ['__proto__ on PATCH', patch('{"__proto__":{"title":"hacked","polluted":true}}')],
    ['constructor on PATCH', patch('{"constructor":{"prototype":{"polluted":true}}}')],
    ['__proto__ on …/complete', { method: 'PATCH', path: onTask('/complete'), body: '{"__proto__":{"completed":true}}' }],
    ['hasOwnProperty as a member', post('{"title":"x","hasOwnProperty":1}')],
    ['a duplicate key whose last value is bad', post('{"title":"fine","title":""}')],
    ['an escaped surrogate pair as an unknown key', post('{"title":"x","\\ud83d\\ude00":1}')],
    ['a lone surrogate as an unknown key', post('{"title":"x","\\udc00":1}')],
    ['201 lone surrogates as title', post(`{"title":"${'\\ud800'.repeat(201)}"}`)],
    ['a lone surrogate next to a NUL', post('{"title":"\\ud800\\u0000"}')],
    ['3,000 unknown members', post(JSON.stringify(Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`k${i}`, i]))))],
    ['a 60,000-character key', post(JSON.stringify({ title: 'x', ['k'.repeat(60_000)]: 1 }))],
    ['an operator object as title', post('{"title":{"$gt":""}}')],
    ['SQL in an unknown key', post('{"title":"x","title\\"); drop table tasks; --":1}')],
    ['a BOM then garbage', post('\ufeff{title}')],
    [
      'UTF-16 bytes',
      { method: 'POST', body: new Uint8Array(Buffer.from('{"title":"x"}', 'utf16le')), type: 'application/json; charset=utf-16' },
    ],
    ['a JSON array 60,000 deep (over the limit)', post(`${'['.repeat(60_000)}${']'.repeat(60_000)}`)],
    ['gzip that is not gzip', { method: 'POST', body: '{"title":"x"}', headers: { 'Content-Encoding': 'gzip' } }],
    ['task_id with SQL', get(token('/1%20OR%201=1'))],
    ['task_id with a statement', get(token('/1;DROP%20TABLE%20tasks'))],
    ['task_id with a path traversal', get(token('/..%2F..%2Fetc%2Fpasswd'))],
    ['task_id with a NUL', get(token('/1%00'))],
    ['task_id with an encoded slash', get(token('/1%2F2'))],
    ['task_id of 1,000 digits', get(token(`/${'9'.repeat(1000)}`))],
    ['task_id Infinity', get(token('/Infinity'))],
    ['task_id -Infinity on DELETE', { method: 'DELETE', path: token('/-Infinity') }],
    ['task_id 1e999 on …/complete', { method: 'PATCH', path: token('/1e999/complete') }],
    ['task_id NaN on PUT', { method: 'PUT', path: token('/NaN'), body: '{"title":"x"}' }],
    ['limit Infinity', get(token('?limit=Infinity'))],
    ['limit of 400 digits', get(token(`?limit=${'9'.repeat(400)}`))],
    ['a path segment that is not percent-encoding', get(token('/%E0%A4%A'))],
    ['user_id with SQL', get((box) => `/api/${encodeURIComponent(`${box.user_id}' OR '1'='1`)}/tasks`)],
    ['user_id of 5,000 characters', get(() => `/api/${'u'.repeat(5000)}/tasks`)],
    ['user_id with a NUL', get(() => '/api/%00/tasks')],
    ['__proto__ in the query', get(token('?__proto__[polluted]=1'))],
    ['constructor.prototype in the query', get(token('?constructor[prototype][polluted]=1'))],
    ['a nested q', get(token('?q[a][b]=x'))],
  ]

  test.each(hostile)('%s → a 4xx of SPEC, nothing changed', async (_, h) => {
    const box = await sandbox(server)
    const before = await box.rows()
    const sent = await send(server, (h.path ?? token())(box), {
      method: h.method ?? 'GET',
      token: box.token,
      body: h.body,
      type: h.type,
      headers: h.headers,
    })
    expect([400, 403, 404, 405, 413, 415, 422]).toContain(sent.status)
    expectProblem(sent, sent.status, 'any')
    expect(await box.rows()).toEqual(before)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.prototype).not.toHaveProperty('polluted')
  })
})

// Organizing tasks (issue 8): priority, tags, due_date, recurrence and remind_at are checked like the
// other fields, on every write that takes them, and a refused write stores nothing.
describe('422: tags', () => {
  const bad: [string, unknown, Where[]][] = [
    ['21 tags', Array.from({ length: 21 }, (_, i) => `tag${i}`), ['body /tags']],
    ['a tag of 51 characters', ['fine', 'x'.repeat(51)], ['body /tags/1']],
    ['a tag of 51 emoji', ['😀'.repeat(51)], ['body /tags/0']],
    ['an empty tag', [''], ['body /tags/0']],
    ['a blank tag', ['fine', ' \t '], ['body /tags/1']],
    ['a tag of no-break spaces', ['\u00a0\u3000'], ['body /tags/0']],
    ['a tag with a NUL', ['a\u0000b'], ['body /tags/0']],
    ['duplicates differing in case', ['Work', 'home', 'WORK'], ['body /tags/2']],
    ['duplicates once trimmed', ['home', '  home '], ['body /tags/1']],
    ['duplicates differing in case once trimmed', ['Home', 'errands', ' hOmE'], ['body /tags/2']],
    ['exact duplicates', ['work', 'work'], ['body /tags']],
    ['a string, not an array', 'work', ['body /tags']],
    ['null', null, ['body /tags']],
    ['an object', { work: true }, ['body /tags']],
    ['a number among the tags', ['fine', 5], ['body /tags/1']],
    ['a nested array', [['work']], ['body /tags/0']],
  ]
  test.each(bad.flatMap(([name, tags, where]) => cross([[name, { tags, where }]], taskWrites)))(
    '%s',
    async (_, { tags, where }, w, style) => {
      await refused(w, style, { title: 'Buy milk', tags }, 422, where)
    },
  )

  test.each(targets([complete]))('tags on …/complete → 422: %s', async (_, w, style) => {
    await refused(w, style, { completed: true, tags: ['work'] }, 422, ['body /tags'])
  })

  const good: [string, string[]][] = [
    ['20 tags of 50 characters', Array.from({ length: 20 }, (_, i) => `${String(i).padStart(2, '0')}${'t'.repeat(48)}`)],
    ['50 emoji', ['😀'.repeat(50)]],
    ['no tags', []],
  ]
  test.each(cross(good, taskWrites))('accepted: %s', async (_, tags, w, style) => {
    const box = await sandbox(server)
    const sent = await send(server, urlOf(box, w, style), { method: w.method, token: box.token, body: { title: 'Buy milk', tags } })
    expect(sent.status).toBe(success(w))
    expect((sent.body as Task).tags).toEqual(tags)
  })
})

describe('422: priority', () => {
  const bad: [string, unknown][] = [
    ['unknown', 'critical'],
    ['in capitals', 'HIGH'],
    ['empty', ''],
    ['null', null],
    ['a number', 3],
    ['an array', ['high']],
  ]
  test.each(cross(bad, taskWrites))('%s', async (_, priority, w, style) => {
    await refused(w, style, { title: 'Buy milk', priority }, 422, ['body /priority'])
  })

  test.each(targets([complete]))('priority on …/complete → 422: %s', async (_, w, style) => {
    await refused(w, style, { completed: true, priority: 'high' }, 422, ['body /priority'])
  })
})

describe('422: due_date and remind_at', () => {
  const bad: [string, unknown][] = [
    ['a word', 'tomorrow'],
    ['a date without a time', '2026-01-01'],
    ['a time without an offset', '2026-01-01T10:00:00'],
    ['a time without an offset, with milliseconds', '2026-01-01T10:00:00.000'],
    ['a day that does not exist', '2026-02-30T10:00:00Z'],
    ['an hour that does not exist', '2026-01-01T25:00:00Z'],
    ['an offset beyond 23:59', '2026-01-01T10:00:00+24:00'],
    ['an empty string', ''],
    ['milliseconds since the epoch', 1767261600000],
    ['a boolean', true],
    ['an object', { date: '2026-01-01T10:00:00Z' }],
  ]
  const fields = ['due_date', 'remind_at'] as const
  const cases = fields.flatMap((field) =>
    bad.map(([name, value]): [string, { field: string; value: unknown }] => [`${field}: ${name}`, { field, value }]),
  )
  test.each(cross(cases, taskWrites))('%s', async (_, { field, value }, w, style) => {
    await refused(w, style, { title: 'Buy milk', [field]: value }, 422, [`body /${field}`])
  })

  test.each(targets([complete]))('due_date on …/complete → 422: %s', async (_, w, style) => {
    await refused(w, style, { completed: true, due_date: '2026-01-01T10:00:00Z' }, 422, ['body /due_date'])
  })
})

// Date-times the contract's format admits but that PostgreSQL cannot store (year 0, after an offset
// is applied) or that JavaScript's Date cannot read (a leap second): a clear 422 or a faithful
// round trip, never a 500.
describe('date-times at the edges of what can be stored', () => {
  test.each(
    cross(
      [
        ['year 0000', '0000-01-01T00:00:00Z'],
        ['year 0001 at +01:00 (year 0 in UTC)', '0001-01-01T00:30:00+01:00'],
        ['9999-12-31 at -01:00 (year 10000 in UTC)', '9999-12-31T23:30:00-01:00'],
        ['a leap second', '2026-12-31T23:59:60Z'],
      ],
      [create, update],
    ),
  )('%s → 422 naming the field, or stored and returned as sent', async (_, due_date, w, style) => {
    const box = await sandbox(server)
    const before = await box.rows()
    const sent = await send(server, urlOf(box, w, style), { method: w.method, token: box.token, body: { title: 'edge', due_date } })
    if (sent.status === 422) {
      expectProblem(sent, 422, ['body /due_date'])
      expect(await box.rows()).toEqual(before)
    } else {
      expect(sent.status).toBe(success(w))
      expect(Date.parse((sent.body as Task).due_date as string)).toBe(Date.parse(due_date))
    }
  })
})

describe('422: recurrence', () => {
  const bad: [string, unknown][] = [
    ['unknown', 'yearly'],
    ['capitalised', 'Daily'],
    ['empty', ''],
    ['a number', 7],
    ['an array', ['daily']],
  ]
  test.each(cross(bad, taskWrites))('%s', async (_, recurrence, w, style) => {
    await refused(w, style, { title: 'Buy milk', due_date: '2026-01-01T10:00:00Z', recurrence }, 422, ['body /recurrence'])
  })

  test.each(cross([['daily', 'daily'] as [string, string], ['monthly', 'monthly']], taskWrites))(
    'recurrence %s without a due date, on a task that has none → 422: %s',
    async (_, recurrence, w, style) => {
      await refused(w, style, { title: 'Buy milk', recurrence }, 422, ['body /recurrence'])
    },
  )

  test.each(targets(taskWrites))('recurrence with due_date null → 422: %s', async (_, w, style) => {
    await refused(w, style, { title: 'Buy milk', recurrence: 'weekly', due_date: null }, 422, ['body /recurrence'])
  })

  /** A sandbox whose task, the one written to, recurs. */
  async function recurringBox(): Promise<Sandbox> {
    const box = await sandbox(server)
    const sent = await send(server, tasksUrl('token style', box.user_id, `/${box.task.id}`), {
      method: 'PATCH',
      token: box.token,
      body: { due_date: '2026-01-01T10:00:00Z', recurrence: 'daily' },
    })
    expect(sent.status).toBe(200)
    return { ...box, task: sent.body as Task }
  }

  test.each(targets([replace, update]))('due_date: null on a recurring task → 422 naming recurrence: %s', async (_, w, style) => {
    const box = await recurringBox()
    await expectRefused(server, box, urlOf(box, w, style), { method: w.method, body: { title: 'Buy milk', due_date: null } }, 422, [
      'body /recurrence',
    ])
  })

  test.each(targets([replace, update]))('due_date: null with recurrence: null on a recurring task is accepted: %s', async (_, w, style) => {
    const box = await recurringBox()
    const sent = await send(server, urlOf(box, w, style), {
      method: w.method,
      token: box.token,
      body: { title: 'Buy milk', due_date: null, recurrence: null },
    })
    expect(sent.status).toBe(200)
    expect(sent.body).toMatchObject({ due_date: null, recurrence: null })
  })
})

describe('422: bulk PATCH on the collection', () => {
  const bodies: [string, unknown, Where[]][] = [
    ['an empty object', {}, ['body /completed']],
    ['an unknown property beside completed', { completed: true, title: 'x' }, ['body /title']],
    ['a task field instead of completed', { priority: 'high' }, ['body /completed', 'body /priority']],
    ['completed as a string', { completed: 'true' }, ['body /completed']],
    ['completed as a number', { completed: 1 }, ['body /completed']],
    ['completed null', { completed: null }, ['body /completed']],
    ['an array', [{ completed: true }], ['body']],
  ]
  test.each(
    bodies.flatMap(([name, body, where]) => styles.map((s): [string, unknown, Where[], Style] => [`${name}, ${s}`, body, where, s])),
  )('%s', async (_, body, where, style) => {
    const box = await sandbox(server)
    await expectRefused(server, box, tasksUrl(style, box.user_id, '?status=all'), { method: 'PATCH', body }, 422, where)
  })

  test.each(styles)('a body that is not JSON → 400, %s', async (style) => {
    const box = await sandbox(server)
    await expectRefused(server, box, tasksUrl(style, box.user_id), { method: 'PATCH', body: '{"completed": tru' }, 400)
  })
})
