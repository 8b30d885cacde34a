// The list endpoint's filters, sorts, search and limit. Every expected order is computed here from
// the rows the test inserted, independently of the server's SQL; titles used for sorting are ASCII
// letters and digits only, so the expectation holds under any database collation.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import type { components } from '../generated/api.js'
import { at, expectedOrder, insertTasks, type Row } from './support/seed.js'
import { signIn, startServer, type TestServer } from './support/server.js'

type Task = components['schemas']['Task']
type Status = 'all' | 'pending' | 'completed'

interface Seed {
  title: string
  description?: string | null
  completed?: boolean
  created_at?: Date
  updated_at?: Date
}

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

/** Inserts the user's tasks n milliseconds apart unless a seed gives its own timestamps. */
function seed(user_id: string, seeds: Seed[]): Promise<Row[]> {
  return insertTasks(
    server.sql,
    user_id,
    seeds.map((s, i) => ({
      title: s.title,
      description: s.description ?? null,
      completed: s.completed ?? false,
      created_at: s.created_at ?? at(i),
      updated_at: s.updated_at ?? s.created_at ?? at(i),
    })),
  )
}

const ids = (tasks: Task[] | undefined) => (tasks ?? []).map((t) => t.id)

/** A raw list request (token style unless a user id is given), returning status, body and Link. */
async function list(token: string, query: Record<string, string> = {}, user_id?: string) {
  const path = user_id ? `/api/${encodeURIComponent(user_id)}/tasks` : '/api/tasks'
  const search = new URLSearchParams(query).toString()
  const response = await server.fetch(`${path}${search ? `?${search}` : ''}`, { headers: { Authorization: `Bearer ${token}` } })
  const text = await response.text()
  return {
    status: response.status,
    type: response.headers.get('content-type'),
    link: response.headers.get('link'),
    text,
    body: JSON.parse(text),
  }
}

// Twelve tasks whose keys disagree: created_at, updated_at and title each give another order,
// with ties in each key (created_at 3 and 4 twice, updated_at 50 three times, "apple" thrice).
const mixed: Seed[] = [
  { title: 'cherry', created_at: at(3), updated_at: at(50) },
  { title: 'apple', created_at: at(1), updated_at: at(60), completed: true },
  { title: 'Banana', created_at: at(4), updated_at: at(50) },
  { title: 'APPLE', created_at: at(3), updated_at: at(40), completed: true },
  { title: 'date', created_at: at(2), updated_at: at(70) },
  { title: 'Apple', created_at: at(4), updated_at: at(50) },
  { title: 'elderberry', created_at: at(6), updated_at: at(45), completed: true },
  { title: 'fig', created_at: at(5), updated_at: at(80) },
  { title: 'banana2', created_at: at(0), updated_at: at(41) },
  { title: 'Cherry1', created_at: at(7), updated_at: at(42), completed: true },
  { title: 'grape', created_at: at(4), updated_at: at(43) },
  { title: 'apricot', created_at: at(8), updated_at: at(44) },
]

describe('status', () => {
  test.each<[Status, (r: Row) => boolean]>([
    ['all', () => true],
    ['pending', (r) => !r.completed],
    ['completed', (r) => r.completed],
  ])('when status=%s, then exactly the matching tasks come back, newest first', async (status, keep) => {
    const { user_id, api } = await signIn(server)
    const rows = await seed(user_id, mixed)
    const { data, response } = await api.GET('/api/tasks', { params: { query: { status } } })
    expect(response.status).toBe(200)
    expect(ids(data)).toEqual(expectedOrder(rows.filter(keep), 'created_at', 'desc'))
    expect(data?.every((t) => t.user_id === user_id)).toBe(true)
  })
})

describe('sort and order', () => {
  const combinations = (['created_at', 'updated_at', 'title'] as const).flatMap((sort) =>
    (['asc', 'desc'] as const).map((order) => [sort, order] as const),
  )

  test.each(combinations)(
    'when sort=%s and order=%s, then the tasks come in that order, ties broken by id in the same direction',
    async (sort, order) => {
      const { user_id, api } = await signIn(server)
      const rows = await seed(user_id, mixed)
      const { data } = await api.GET('/api/tasks', { params: { query: { sort, order } } })
      expect(ids(data)).toEqual(expectedOrder(rows, sort, order))
    },
  )

  test.each(combinations)(
    'when sort=%s and order=%s are combined with each status, then the filtered order is the same order',
    async (sort, order) => {
      const { user_id, api } = await signIn(server)
      const rows = await seed(user_id, mixed)
      for (const [status, keep] of [
        ['pending', (r: Row) => !r.completed],
        ['completed', (r: Row) => r.completed],
      ] as const) {
        const { data } = await api.GET('/api/tasks', { params: { query: { sort, order, status } } })
        expect(ids(data)).toEqual(expectedOrder(rows.filter(keep), sort, order))
      }
    },
  )

  test('when sorting by title, then case is ignored: "apple" < "Banana" < "cherry" (byte order would put "Banana" first)', async () => {
    const { user_id, api } = await signIn(server)
    const [cherry, apple, banana] = await seed(user_id, [{ title: 'cherry' }, { title: 'apple' }, { title: 'Banana' }])
    const asc = await api.GET('/api/tasks', { params: { query: { sort: 'title', order: 'asc' } } })
    expect(asc.data?.map((t) => t.title)).toEqual(['apple', 'Banana', 'cherry'])
    expect(ids(asc.data)).toEqual([apple?.id, banana?.id, cherry?.id])
    const desc = await api.GET('/api/tasks', { params: { query: { sort: 'title', order: 'desc' } } })
    expect(desc.data?.map((t) => t.title)).toEqual(['cherry', 'Banana', 'apple'])
  })

  test.each(combinations)(
    'when 40 tasks share created_at, updated_at and (case-insensitively) title, then sort=%s order=%s orders them by id in that direction',
    async (sort, order) => {
      const { user_id, api } = await signIn(server)
      const same = at(5000)
      const rows = await seed(
        user_id,
        Array.from({ length: 40 }, (_, i) => ({ title: ['tie', 'TIE', 'Tie'][i % 3] as string, created_at: same, updated_at: same })),
      )
      const byId = rows.map((r) => r.id).sort((a, b) => (order === 'asc' ? a - b : b - a))
      const { data } = await api.GET('/api/tasks', { params: { query: { sort, order } } })
      expect(ids(data)).toEqual(byId)
      // Stable: asking again gives the same order.
      const again = await api.GET('/api/tasks', { params: { query: { sort, order } } })
      expect(ids(again.data)).toEqual(byId)
    },
  )
})

describe('defaults', () => {
  test('when no parameter is given, then it is status=all, sort=created_at, order=desc', async () => {
    const { user_id, token, api } = await signIn(server)
    const rows = await seed(user_id, mixed)
    const { data } = await api.GET('/api/tasks')
    expect(ids(data)).toEqual(expectedOrder(rows, 'created_at', 'desc'))
    const explicit = await list(token, { status: 'all', sort: 'created_at', order: 'desc', limit: '100' })
    expect(explicit.body).toEqual(data)
  })

  test('when a user has 130 tasks and no limit is given, then the first 100 come back with a Link to the rest', async () => {
    const { user_id, token } = await signIn(server)
    const rows = await seed(
      user_id,
      Array.from({ length: 130 }, (_, i) => ({ title: `task${i}` })),
    )
    const first = await list(token)
    expect(first.status).toBe(200)
    expect(ids(first.body)).toEqual(expectedOrder(rows, 'created_at', 'desc').slice(0, 100))
    expect(first.link).toMatch(/^<\/api\/tasks\?cursor=[A-Za-z0-9_-]+>; rel="next"$/)
  })

  test('when a user has exactly 100 tasks and no limit is given, then all come back without a Link', async () => {
    const { user_id, token } = await signIn(server)
    await seed(
      user_id,
      Array.from({ length: 100 }, (_, i) => ({ title: `task${i}` })),
    )
    const page = await list(token)
    expect(page.body).toHaveLength(100)
    expect(page.link).toBeNull()
  })
})

describe('q: case-insensitive substring of title or description', () => {
  test('when q is given in any case, then tasks whose title or description contain it match, and no others', async () => {
    const { user_id, api } = await signIn(server)
    const rows = await seed(user_id, [
      { title: 'Buy MILK' },
      { title: 'Groceries', description: 'oat milk, 2 litres' },
      { title: 'Milkshake', description: 'strawberry' },
      { title: 'Bread', description: 'wholemeal' },
      { title: 'Call mum', description: null },
      { title: 'mil k', description: 'm-ilk' },
    ])
    for (const q of ['milk', 'MILK', 'mIlK']) {
      const { data } = await api.GET('/api/tasks', { params: { query: { q, sort: 'title', order: 'asc' } } })
      expect(data?.map((t) => t.title)).toEqual(['Buy MILK', 'Groceries', 'Milkshake'])
    }
    const inDescriptionOnly = await api.GET('/api/tasks', { params: { query: { q: 'LITRES' } } })
    expect(ids(inDescriptionOnly.data)).toEqual([rows[1]?.id])
    const none = await api.GET('/api/tasks', { params: { query: { q: 'cheese' } } })
    expect(none.data).toEqual([])
  })

  test('when q is "%", then only the task containing a percent sign matches', async () => {
    const { user_id, api } = await signIn(server)
    const [percent] = await seed(user_id, [
      { title: '100%' },
      { title: '100' },
      { title: 'percent', description: 'per cent' },
      { title: '1000' },
    ])
    const { data } = await api.GET('/api/tasks', { params: { query: { q: '%' } } })
    expect(ids(data)).toEqual([percent?.id])
    const suffix = await api.GET('/api/tasks', { params: { query: { q: '0%' } } })
    expect(ids(suffix.data)).toEqual([percent?.id])
  })

  test('when q contains "_", then it matches only a literal underscore: "a_b" but not "axb"', async () => {
    const { user_id, api } = await signIn(server)
    const [underscore] = await seed(user_id, [{ title: 'a_b' }, { title: 'axb' }, { title: 'ab' }, { title: 'other', description: 'a-b' }])
    for (const q of ['_', 'a_b', 'A_B']) {
      const { data } = await api.GET('/api/tasks', { params: { query: { q } } })
      expect(ids(data)).toEqual([underscore?.id])
    }
  })

  test('when q contains a backslash, then it matches only a literal backslash', async () => {
    const { user_id, api } = await signIn(server)
    const [slash, escapedPercent] = await seed(user_id, [
      { title: 'C:\\temp' },
      { title: 'rate \\% sign' },
      { title: 'C:temp' },
      { title: 'rate % sign' },
      { title: 'plain', description: '/ forward' },
    ])
    const backslash = await api.GET('/api/tasks', { params: { query: { q: '\\', sort: 'title', order: 'asc' } } })
    expect(backslash.data?.map((t) => t.id).sort()).toEqual([slash?.id, escapedPercent?.id].sort())
    const path = await api.GET('/api/tasks', { params: { query: { q: ':\\t' } } })
    expect(ids(path.data)).toEqual([slash?.id])
    // "\%" is a backslash followed by a percent sign, not an escaped percent sign.
    const both = await api.GET('/api/tasks', { params: { query: { q: '\\%' } } })
    expect(ids(both.data)).toEqual([escapedPercent?.id])
  })

  // The typed SDK (openapi-fetch) leaves !()* unencoded and URLSearchParams, which hand-written
  // frontends use, writes a space as '+': a search for "(urgent)" must work either way.
  test.each(['(urgent)', 'wow!', 'a*b', 'buy oat milk', "don't", 'a+b', 'x=1; y/2?'])(
    'when the SDK searches for %j, then the task containing it literally matches',
    async (q) => {
      const { user_id, api } = await signIn(server)
      const [hit] = await seed(user_id, [{ title: `before ${q} after` }, { title: 'nothing special' }])
      const { data, response } = await api.GET('/api/tasks', { params: { query: { q } } })
      expect(response.status).toBe(200)
      expect(ids(data)).toEqual([hit?.id])
    },
  )

  test.each(['buy oat milk', '(urgent)', 'a*b'])(
    'when a frontend sends q=%j through URLSearchParams, then it is searched literally',
    async (q) => {
      const { user_id, token } = await signIn(server)
      const [hit] = await seed(user_id, [{ title: `before ${q} after` }, { title: 'nothing special' }])
      const response = await list(token, { q })
      expect(response.status).toBe(200)
      expect(ids(response.body)).toEqual([hit?.id])
    },
  )

  test('when q is combined with status, sort and order, then all of them apply', async () => {
    const { user_id, api } = await signIn(server)
    const rows = await seed(user_id, [
      { title: 'report', description: 'Quarterly', completed: true, created_at: at(1) },
      { title: 'quarterly review', completed: false, created_at: at(2) },
      { title: 'QUARTERLY tax', completed: true, created_at: at(3) },
      { title: 'yearly', completed: true, created_at: at(4) },
    ])
    const { data } = await api.GET('/api/tasks', { params: { query: { q: 'quarter', status: 'completed', order: 'asc' } } })
    expect(ids(data)).toEqual([rows[0]?.id, rows[2]?.id])
  })
})

describe('limit', () => {
  test.each([1, 3, 11, 12, 500])('when limit=%i, then at most that many tasks come back, the first ones of the order', async (limit) => {
    const { user_id, api } = await signIn(server)
    const rows = await seed(user_id, mixed)
    const { data, response } = await api.GET('/api/tasks', { params: { query: { limit, sort: 'title', order: 'asc' } } })
    expect(ids(data)).toEqual(expectedOrder(rows, 'title', 'asc').slice(0, limit))
    expect(response.headers.has('link')).toBe(limit < rows.length)
  })

  test.each(['0', '501', '-1', '2.5', 'ten'])('when limit=%s, then the request is rejected with 422 naming limit', async (limit) => {
    const { token } = await signIn(server)
    const response = await list(token, { limit })
    expect(response.status).toBe(422)
    expect(response.body.errors).toEqual([expect.objectContaining({ location: 'query', path: 'limit' })])
  })
})

describe('the body', () => {
  test('when the user has no tasks, then the body is exactly [] as application/json', async () => {
    const { token } = await signIn(server)
    const response = await list(token)
    expect(response.status).toBe(200)
    expect(response.type).toMatch(/^application\/json/)
    expect(response.text).toBe('[]')
    expect(response.link).toBeNull()
  })

  test('when a page is followed by more, then the body is still a plain array of tasks (the page link is only in the header)', async () => {
    const { user_id, token } = await signIn(server)
    await seed(user_id, mixed)
    const response = await list(token, { limit: '2' })
    expect(Array.isArray(response.body)).toBe(true)
    expect(response.body).toHaveLength(2)
    expect(response.link).not.toBeNull()
    for (const task of response.body as Task[]) {
      expect(Object.keys(task).sort()).toEqual([
        'completed',
        'created_at',
        'description',
        'due_date',
        'id',
        'priority',
        'recurrence',
        'remind_at',
        'tags',
        'title',
        'updated_at',
        'user_id',
      ])
    }
  })

  test('when the same query is sent path style and token style, then the answers are identical', async () => {
    const { user_id, token } = await signIn(server)
    await seed(user_id, mixed)
    const query = { status: 'pending', sort: 'title', order: 'asc', q: 'a', limit: '3' }
    const token_style = await list(token, query)
    const path_style = await list(token, query, user_id)
    expect(path_style.status).toBe(200)
    expect(path_style.text).toBe(token_style.text)
    expect(path_style.link?.replace(`/api/${user_id}/tasks`, '/api/tasks')).toBe(token_style.link)
  })
})
