// Organizing tasks (SPEC.md "Organizing tasks", issue 8): priority, tags, due date, recurrence and
// reminder round-trip through every write in both URL spellings; the list filters them, sorts by
// due date and priority and pages through the Link header; counts and bulk writes act on what the
// list would show. Every expectation is computed here from the tasks the test created.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import type { components } from '../generated/api.js'
import { expectProblem, type Sent, type Style, send, styles, tasksUrl } from './bad-input.helpers.js'
import { signIn, startServer, type TestServer } from './support/server.js'

type Task = components['schemas']['Task']
type Priority = components['schemas']['Priority']
type Counts = components['schemas']['TaskCounts']
type Fields = Partial<Omit<components['schemas']['TaskCreate'], 'title'>> & { title: string }

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

interface User {
  user_id: string
  token: string
}

type Query = Record<string, string | number | string[] | undefined>

/** A query string with repeated keys for arrays (`tag=a&tag=b`), as the SDK and URLSearchParams write them. */
function search(query: Query = {}): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue
    for (const v of Array.isArray(value) ? value : [value]) params.append(key, String(v))
  }
  const text = params.toString()
  return text ? `?${text}` : ''
}

/** A request on the user's tasks in one spelling: `rest` after `/tasks`, then the query. */
function call(user: User, style: Style, method: string, rest = '', options: { query?: Query; body?: unknown } = {}): Promise<Sent> {
  return send(server, tasksUrl(style, user.user_id, `${rest}${search(options.query)}`), {
    method,
    token: user.token,
    body: options.body,
  })
}

async function createTask(user: User, fields: Fields, style: Style = 'token style'): Promise<Task> {
  const sent = await call(user, style, 'POST', '', { body: fields })
  if (sent.status !== 201) throw new Error(`create answered ${sent.status}: ${JSON.stringify(sent.body)}`)
  return sent.body as Task
}

/** Creates the tasks one after the other, so that ids follow the order given. */
async function createTasks(user: User, list: Fields[]): Promise<Task[]> {
  const tasks: Task[] = []
  for (const fields of list) tasks.push(await createTask(user, fields))
  return tasks
}

async function getTask(user: User, id: number): Promise<Task> {
  const sent = await call(user, 'token style', 'GET', `/${id}`)
  expect(sent.status).toBe(200)
  return sent.body as Task
}

/** The user's rows as PostgreSQL renders them (every column), by id. */
async function rowsOf(user_id: string): Promise<string[]> {
  const rows = await server.sql<{ json: string }[]>`select row_to_json(t)::text as json from tasks t where user_id = ${user_id} order by id`
  return rows.map((r) => r.json)
}

const organizeDefaults = { priority: 'medium', tags: [], due_date: null, recurrence: null, remind_at: null }

describe('the new fields round-trip', () => {
  test.each(styles)('when a task is created with a title only (%s), then priority is medium, tags [] and the rest null', async (style) => {
    const user = await signIn(server)
    const task = await createTask(user, { title: 'plain' }, style)
    expect(task).toMatchObject({ title: 'plain', completed: false, ...organizeDefaults })
    expect(task).not.toHaveProperty('next_occurrence')
    expect(await getTask(user, task.id)).toEqual(task)
  })

  test.each(styles)('when a task is created with every field (%s), then each comes back as sent, dates in UTC', async (style) => {
    const user = await signIn(server)
    const task = await createTask(
      user,
      {
        title: 'report',
        description: 'quarterly',
        priority: 'urgent',
        tags: ['Work', 'q3', 'finance'],
        due_date: '2026-11-22T17:00:00Z',
        recurrence: 'weekly',
        remind_at: '2026-11-22T16:00:00.250Z',
      },
      style,
    )
    expect(task).toMatchObject({
      title: 'report',
      description: 'quarterly',
      completed: false,
      priority: 'urgent',
      tags: ['Work', 'q3', 'finance'],
      due_date: '2026-11-22T17:00:00.000Z',
      recurrence: 'weekly',
      remind_at: '2026-11-22T16:00:00.250Z',
    })
    expect(task).not.toHaveProperty('next_occurrence')
    expect(await getTask(user, task.id)).toEqual(task)
  })

  test.each(['low', 'medium', 'high', 'urgent'] as const)('when priority is %s, then it is stored and returned', async (priority) => {
    const user = await signIn(server)
    const task = await createTask(user, { title: 'p', priority })
    expect((await getTask(user, task.id)).priority).toBe(priority)
  })

  test('when tags have whitespace around them, then they are trimmed, keeping their case and order', async () => {
    const user = await signIn(server)
    const task = await createTask(user, { title: 't', tags: ['  zeta ', '\tAlpha', 'mid dle\n', 'B'] })
    expect(task.tags).toEqual(['zeta', 'Alpha', 'mid dle', 'B'])
    expect((await getTask(user, task.id)).tags).toEqual(['zeta', 'Alpha', 'mid dle', 'B'])
  })

  test('when a task has 20 tags of 50 characters, then all are kept', async () => {
    const user = await signIn(server)
    const tags = Array.from({ length: 20 }, (_, i) => `${String(i).padStart(2, '0')}${'x'.repeat(48)}`)
    const task = await createTask(user, { title: 't', tags })
    expect(task.tags).toEqual(tags)
  })

  const zones: [string, string][] = [
    ['2026-03-01T10:00:00+05:30', '2026-03-01T04:30:00.000Z'],
    ['2026-03-01T10:00:00-08:00', '2026-03-01T18:00:00.000Z'],
    ['2026-03-01T10:00:00+00:00', '2026-03-01T10:00:00.000Z'],
    ['2026-03-01T10:00:00.123+01:00', '2026-03-01T09:00:00.123Z'],
    ['2026-03-01T10:00:00.5Z', '2026-03-01T10:00:00.500Z'],
    ['2026-12-31T23:30:00-01:00', '2027-01-01T00:30:00.000Z'],
    ['2028-03-01T01:00:00+14:00', '2028-02-29T11:00:00.000Z'],
  ]
  test.each(zones)('when due_date and remind_at are %s, then both come back as %s (create, PATCH, PUT)', async (input, utc) => {
    const user = await signIn(server)
    const created = await createTask(user, { title: 'zoned', due_date: input, remind_at: input })
    expect([created.due_date, created.remind_at]).toEqual([utc, utc])

    const plain = await createTask(user, { title: 'later' })
    const patched = await call(user, 'path style', 'PATCH', `/${plain.id}`, { body: { due_date: input, remind_at: input } })
    expect(patched.status).toBe(200)
    expect([(patched.body as Task).due_date, (patched.body as Task).remind_at]).toEqual([utc, utc])

    const other = await createTask(user, { title: 'replaced' })
    const replaced = await call(user, 'token style', 'PUT', `/${other.id}`, {
      body: { title: 'replaced', due_date: input, remind_at: input },
    })
    expect([(replaced.body as Task).due_date, (replaced.body as Task).remind_at]).toEqual([utc, utc])

    const [row] = await server.sql`select due_date = ${utc}::timestamptz as same from tasks where id = ${created.id}`
    expect(row?.same).toBe(true)
  })

  const full: Fields = {
    title: 'full',
    description: 'kept',
    completed: false,
    priority: 'high',
    tags: ['home', 'Garden'],
    due_date: '2026-06-01T08:00:00.000Z',
    recurrence: 'monthly',
    remind_at: '2026-06-01T07:30:00.000Z',
  }

  test.each(styles)('when PUT sends only a title (%s), then every omitted field keeps its value', async (style) => {
    const user = await signIn(server)
    const task = await createTask(user, full)
    const sent = await call(user, style, 'PUT', `/${task.id}`, { body: { title: 'renamed' } })
    expect(sent.status).toBe(200)
    expect(sent.body).toEqual({ ...task, title: 'renamed', updated_at: expect.any(String) })
    expect(await getTask(user, task.id)).toEqual(sent.body)
  })

  test.each(styles)('when PUT sends some of the new fields (%s), then those change and the rest are kept', async (style) => {
    const user = await signIn(server)
    const task = await createTask(user, full)
    const sent = await call(user, style, 'PUT', `/${task.id}`, { body: { title: 'full', priority: 'low', tags: [], remind_at: null } })
    expect(sent.status).toBe(200)
    expect(sent.body).toEqual({ ...task, priority: 'low', tags: [], remind_at: null, updated_at: expect.any(String) })
  })

  const changes: [string, Record<string, unknown>][] = [
    ['priority', { priority: 'urgent' }],
    ['tags', { tags: ['new', 'NEWER'] }],
    ['tags emptied', { tags: [] }],
    ['due_date', { due_date: '2027-01-15T12:00:00.000Z' }],
    ['recurrence', { recurrence: 'daily' }],
    ['recurrence cleared', { recurrence: null }],
    ['remind_at', { remind_at: '2026-05-31T20:00:00.000Z' }],
    ['remind_at cleared', { remind_at: null }],
    ['due_date and recurrence cleared together', { due_date: null, recurrence: null }],
  ]
  test.each(changes.flatMap(([name, body]) => styles.map((s): [string, Record<string, unknown>, Style] => [`${name}, ${s}`, body, s])))(
    'when PATCH sets %s, then that changes, updated_at moves and nothing else changes',
    async (_, body, style) => {
      const user = await signIn(server)
      const task = await createTask(user, full)
      const sent = await call(user, style, 'PATCH', `/${task.id}`, { body })
      expect(sent.status).toBe(200)
      const patched = sent.body as Task
      expect(patched).toEqual({ ...task, ...body, updated_at: expect.any(String) })
      expect(Date.parse(patched.updated_at)).toBeGreaterThan(Date.parse(task.updated_at))
      expect(await getTask(user, task.id)).toEqual(patched)
    },
  )

  test('when PATCH sets a recurrence on a task that has a due date, then it is accepted', async () => {
    const user = await signIn(server)
    const task = await createTask(user, { title: 'r', due_date: '2026-06-01T08:00:00Z' })
    const sent = await call(user, 'token style', 'PATCH', `/${task.id}`, { body: { recurrence: 'weekly' } })
    expect(sent.status).toBe(200)
    expect((sent.body as Task).recurrence).toBe('weekly')
  })

  test('when …/complete toggles a task, then the new fields are kept', async () => {
    const user = await signIn(server)
    const task = await createTask(user, { ...full, recurrence: null })
    const sent = await call(user, 'path style', 'PATCH', `/${task.id}/complete`)
    expect(sent.status).toBe(200)
    expect(sent.body).toEqual({ ...task, recurrence: null, completed: true, updated_at: expect.any(String) })
  })
})

// Twenty-six tasks whose keys disagree: priorities, tags (in mixed case), due dates with ties and
// gaps (every fifth task has none), completion, and a word in some descriptions.
const days = [0, 1, 1, 2, 3, 3, 5].map((d) => new Date(Date.UTC(2026, 4, 1, 12) + d * 86_400_000).toISOString())
const tagSets = [[], ['Work'], ['work', 'Home'], ['HOME'], ['errands', 'WORK', 'home'], ['Errands']]
const priorities: Priority[] = ['low', 'medium', 'high', 'urgent']

function board(n = 26): Fields[] {
  return Array.from({ length: n }, (_, i) => ({
    title: `task${String(i).padStart(2, '0')}`,
    description: i % 4 === 1 ? 'Quarterly report' : null,
    completed: i % 3 === 0,
    priority: priorities[(3 * i + 1) % 4] as Priority,
    tags: tagSets[i % tagSets.length] as string[],
    due_date: i % 5 === 2 ? null : (days[(i * 3) % days.length] as string),
  }))
}

interface Filters {
  status?: 'all' | 'pending' | 'completed'
  q?: string
  priority?: Priority[]
  tag?: string[]
  due_before?: string
  due_after?: string
}

/** Whether the list's filters keep the task, as SPEC words them. */
function matches(t: Task, f: Filters): boolean {
  const due = t.due_date === null ? null : Date.parse(t.due_date)
  const keys = t.tags.map((tag) => tag.toLowerCase())
  const text = (s: string | null) => (s ?? '').toLowerCase().includes((f.q ?? '').toLowerCase())
  return (
    (f.status === undefined || f.status === 'all' || t.completed === (f.status === 'completed')) &&
    (f.q === undefined || text(t.title) || text(t.description)) &&
    (f.priority === undefined || f.priority.includes(t.priority)) &&
    (f.tag === undefined || f.tag.every((tag) => keys.includes(tag.toLowerCase()))) &&
    (f.due_before === undefined || (due !== null && due < Date.parse(f.due_before))) &&
    (f.due_after === undefined || (due !== null && due >= Date.parse(f.due_after)))
  )
}

type Sort = 'created_at' | 'due_date' | 'priority'
type Order = 'asc' | 'desc'
const rank: Record<Priority, number> = { low: 1, medium: 2, high: 3, urgent: 4 }

/** The ids in the order SPEC prescribes: by the key (no due date last in both orders), ties by id in the same direction. */
function expectedOrder(tasks: Task[], sort: Sort, order: Order): number[] {
  const sign = order === 'asc' ? 1 : -1
  const compare = (a: Task, b: Task): number => {
    if (sort === 'due_date') {
      if (a.due_date === null && b.due_date !== null) return 1
      if (b.due_date === null && a.due_date !== null) return -1
      const d = a.due_date === null || b.due_date === null ? 0 : Date.parse(a.due_date) - Date.parse(b.due_date)
      if (d !== 0) return sign * d
    } else if (sort === 'priority') {
      const d = rank[a.priority] - rank[b.priority]
      if (d !== 0) return sign * d
    } else {
      const d = Date.parse(a.created_at) - Date.parse(b.created_at)
      if (d !== 0) return sign * d
    }
    return sign * (a.id - b.id)
  }
  return [...tasks].sort(compare).map((t) => t.id)
}

/** The URL of a `Link: <url>; rel="next"` header (null when there is none). */
function nextOf(headers: Headers): string | null {
  const link = headers.get('link')
  if (link === null) return null
  const match = /^<([^>]+)>; rel="next"$/.exec(link)
  if (!match) throw new Error(`unexpected Link header: ${link}`)
  return match[1] as string
}

async function page(user: User, url: string) {
  const sent = await send(server, url, { token: user.token })
  expect(sent.status).toBe(200)
  const tasks = sent.body as Task[]
  for (const task of tasks) expect(task).not.toHaveProperty('next_occurrence')
  return { ids: tasks.map((t) => t.id), next: nextOf(sent.headers) }
}

/** One unpaginated request, then a walk `limit` at a time along the Links: both give `expected`, and every Link keeps the query. */
async function checkWalk(user: User, style: Style, query: Query, expected: number[], limit = 3) {
  const path = tasksUrl(style, user.user_id)
  const whole = await page(user, `${path}${search({ ...query, limit: 500 })}`)
  expect(whole.next).toBeNull()
  expect(whole.ids).toEqual(expected)

  const ids: number[] = []
  let url: string | null = `${path}${search({ ...query, limit })}`
  let pages = 0
  while (url !== null) {
    const current: Awaited<ReturnType<typeof page>> = await page(user, url)
    ids.push(...current.ids)
    pages += 1
    if (current.next !== null) {
      expect(current.ids).toHaveLength(limit)
      const link = new URL(current.next, server.url)
      expect(decodeURIComponent(link.pathname)).toBe(path)
      for (const [key, value] of Object.entries(query)) {
        if (value !== undefined) expect(link.searchParams.getAll(key)).toEqual((Array.isArray(value) ? value : [value]).map(String))
      }
      expect(link.searchParams.get('cursor')).toMatch(/^[A-Za-z0-9_-]+$/)
    }
    url = current.next
    if (pages > 100) throw new Error('the walk does not end')
  }
  expect(ids).toEqual(expected)
  expect(pages).toBe(Math.max(1, Math.ceil(expected.length / limit)))
}

describe('list filters', () => {
  let user: User
  let tasks: Task[]
  beforeAll(async () => {
    user = await signIn(server)
    tasks = await createTasks(user, board())
    // Another user's tasks, identical, never appear.
    await createTasks(await signIn(server), board(8))
  })

  const filtered = async (query: Query, filters: Filters, sort: Sort = 'created_at', order: Order = 'desc') => {
    const expected = expectedOrder(
      tasks.filter((t) => matches(t, filters)),
      sort,
      order,
    )
    const whole = await page(user, `/api/tasks${search({ ...query, sort, order, limit: 500 })}`)
    expect(whole.ids).toEqual(expected)
    return expected
  }

  test.each(priorities)('when priority=%s, then exactly the tasks of that priority come back', async (priority) => {
    const expected = await filtered({ priority }, { priority: [priority] })
    expect(expected.length).toBeGreaterThan(0)
  })

  test('when priority is repeated (high and urgent), then tasks of either come back', async () => {
    const expected = await filtered({ priority: ['high', 'urgent'] }, { priority: ['high', 'urgent'] })
    expect(expected.length).toBeGreaterThan(0)
    expect(expected.length).toBeLessThan(tasks.length)
    await filtered({ priority: priorities }, {})
  })

  test.each(['work', 'WORK', 'Work', 'wOrK'])('when tag=%s, then every task carrying it in any case comes back', async (tag) => {
    const expected = await filtered({ tag }, { tag: ['work'] })
    // "Work" on some tasks and "work" or "WORK" on others: a case-sensitive filter finds fewer.
    const exact = tasks.filter((t) => t.tags.includes(tag)).length
    expect(expected.length).toBeGreaterThan(exact)
  })

  test('when tag is repeated, then only tasks carrying every one of them come back', async () => {
    const both = await filtered({ tag: ['work', 'HOME'] }, { tag: ['work', 'home'] })
    const workOnly = await filtered({ tag: 'work' }, { tag: ['work'] })
    expect(both.length).toBeGreaterThan(0)
    expect(both.length).toBeLessThan(workOnly.length)
    await filtered({ tag: ['work', 'home', 'errands'] }, { tag: ['work', 'home', 'errands'] })
  })

  test('when the tag is on no task, then the list is empty', async () => {
    expect(await filtered({ tag: 'nowhere' }, { tag: ['nowhere'] })).toEqual([])
  })

  test('when due_before is exactly a due date, then tasks due then are excluded (strictly before)', async () => {
    const boundary = days[3] as string
    const expected = await filtered({ due_before: boundary }, { due_before: boundary })
    expect(tasks.some((t) => t.due_date === boundary)).toBe(true)
    expect(expected.length).toBeGreaterThan(0)
    expect(expected.every((id) => tasks.find((t) => t.id === id)?.due_date !== boundary)).toBe(true)
  })

  test('when due_after is exactly a due date, then tasks due then are included (at or after)', async () => {
    const boundary = days[3] as string
    const expected = await filtered({ due_after: boundary }, { due_after: boundary })
    const due = tasks.filter((t) => t.due_date === boundary).map((t) => t.id)
    expect(due.length).toBeGreaterThan(0)
    for (const id of due) expect(expected).toContain(id)
  })

  test('when the boundary is written with another offset, then it is the same instant', async () => {
    const boundary = days[3] as string
    const shifted = new Date(Date.parse(boundary)).toISOString().replace('T12:00:00.000Z', 'T14:00:00+02:00')
    expect(Date.parse(shifted)).toBe(Date.parse(boundary))
    await filtered({ due_after: shifted }, { due_after: boundary })
    await filtered({ due_before: shifted }, { due_before: boundary })
  })

  test('when due_after and due_before make a window, then only tasks due inside it come back', async () => {
    const window = { due_after: days[1] as string, due_before: days[4] as string }
    const expected = await filtered(window, window)
    expect(expected.length).toBeGreaterThan(0)
    expect(
      await filtered({ due_after: days[4] as string, due_before: days[1] as string }, { due_after: days[4], due_before: days[1] }),
    ).toEqual([])
  })

  test('when a due filter covers every date, then tasks without a due date still never match', async () => {
    const all = { due_after: '1970-01-01T00:00:00Z', due_before: '9999-12-31T00:00:00Z' }
    const expected = await filtered(all, all)
    const undated = tasks.filter((t) => t.due_date === null).map((t) => t.id)
    expect(undated.length).toBeGreaterThan(0)
    expect(expected).toHaveLength(tasks.length - undated.length)
    expect((await filtered({ due_after: '1970-01-01T00:00:00Z' }, { due_after: '1970-01-01T00:00:00Z' })).length).toBe(expected.length)
    expect((await filtered({ due_before: '9999-12-31T00:00:00Z' }, { due_before: '9999-12-31T00:00:00Z' })).length).toBe(expected.length)
  })

  test('when every filter is combined with status and q, then all of them apply', async () => {
    const filters: Filters = {
      status: 'pending',
      q: 'REPORT',
      priority: ['low', 'medium', 'high'],
      tag: ['WORK'],
      due_after: days[0],
      due_before: days[6],
    }
    const expected = await filtered(filters as Query, filters)
    expect(expected.length).toBeGreaterThan(0)
  })

  const sorts = (['due_date', 'priority'] as const).flatMap((sort) => (['asc', 'desc'] as const).map((order) => [sort, order] as const))

  test.each(sorts)('when sort=%s order=%s, then the order is total, ties broken by id (no due date last)', async (sort, order) => {
    const expected = await filtered({}, {}, sort, order)
    expect(expected).toHaveLength(tasks.length)
    if (sort === 'due_date') {
      const undated = tasks.filter((t) => t.due_date === null).map((t) => t.id)
      expect(expected.slice(-undated.length).sort()).toEqual(undated.sort())
    } else {
      const first = tasks.find((t) => t.id === expected[0])
      expect(first?.priority).toBe(order === 'desc' ? 'urgent' : 'low')
    }
  })

  const walks: [string, Query, Filters][] = [
    ['no filter', {}, {}],
    ['status=pending', { status: 'pending' }, { status: 'pending' }],
    ['status=completed and tag=home', { status: 'completed', tag: 'home' }, { status: 'completed', tag: ['home'] }],
    ['priority=low&priority=urgent', { priority: ['low', 'urgent'] }, { priority: ['low', 'urgent'] }],
    ['tag=Work&tag=HOME', { tag: ['Work', 'HOME'] }, { tag: ['work', 'home'] }],
    ['due_after and due_before', { due_after: days[1], due_before: days[6] }, { due_after: days[1], due_before: days[6] }],
    [
      'q=report and priority=medium&priority=high',
      { q: 'report', priority: ['medium', 'high'] },
      { q: 'report', priority: ['medium', 'high'] },
    ],
  ]
  const walkCases = walks.flatMap(([name, query, filters]) =>
    [...sorts, ['created_at', 'asc'] as const].flatMap(([sort, order]) =>
      styles.map((style): [string, Query, Filters, Sort, Order, Style] => [
        `${name}, sort=${sort} order=${order}, ${style}`,
        query,
        filters,
        sort,
        order,
        style,
      ]),
    ),
  )
  test.each(walkCases)(
    'when the list is walked 3 at a time (%s), then every matching task comes once, in order',
    async (_, query, filters, sort, order, style) => {
      const expected = expectedOrder(
        tasks.filter((t) => matches(t, filters)),
        sort,
        order,
      )
      await checkWalk(user, style, { ...query, sort, order }, expected)
    },
  )

  test('when a walk by due date crosses from dated tasks into undated ones, then the page boundary in between loses nothing (1 at a time)', async () => {
    for (const order of ['asc', 'desc'] as const) {
      await checkWalk(user, 'token style', { sort: 'due_date', order }, expectedOrder(tasks, 'due_date', order), 1)
    }
  })
})

describe('counts', () => {
  const past = '2020-01-01T00:00:00Z'
  const future = '2099-01-01T00:00:00Z'
  const seeds: Fields[] = [
    { title: 'overdue 1', due_date: past, priority: 'high', tags: ['Work'] },
    { title: 'overdue 2', due_date: '2024-06-01T00:00:00+02:00', tags: ['home'] },
    { title: 'done late', due_date: past, completed: true, tags: ['work'] },
    { title: 'later', due_date: future, priority: 'high' },
    { title: 'undated' },
    { title: 'undated done', completed: true, priority: 'high', tags: ['WORK', 'home'] },
    { title: 'report', description: 'overdue?', due_date: past, priority: 'low', tags: ['home'] },
  ]
  const expectCounts = (tasks: Task[], filters: Filters): Counts => {
    const kept = tasks.filter((t) => matches(t, filters))
    const pending = kept.filter((t) => !t.completed)
    return {
      all: kept.length,
      pending: pending.length,
      completed: kept.length - pending.length,
      overdue: pending.filter((t) => t.due_date !== null && Date.parse(t.due_date) < Date.now()).length,
    }
  }

  test.each(styles)('when a user asks for counts (%s), then all, pending, completed and overdue are theirs', async (style) => {
    const user = await signIn(server)
    const tasks = await createTasks(user, seeds)
    await createTasks(await signIn(server), seeds)
    const sent = await call(user, style, 'GET', '/counts')
    expect(sent.status).toBe(200)
    expect(sent.body).toEqual(expectCounts(tasks, {}))
    expect(sent.body).toEqual({ all: 7, pending: 5, completed: 2, overdue: 3 })
  })

  const filters: [string, Filters][] = [
    ['status=pending', { status: 'pending' }],
    ['status=completed', { status: 'completed' }],
    ['priority=high', { priority: ['high'] }],
    ['priority=high&priority=low', { priority: ['high', 'low'] }],
    ['tag=WORK', { tag: ['WORK'] }],
    ['tag=work&tag=home', { tag: ['work', 'home'] }],
    ['due_before', { due_before: '2025-01-01T00:00:00Z' }],
    ['due_after', { due_after: '2024-05-31T22:00:00Z' }],
    ['q=report', { q: 'report' }],
    ['q=overdue and status=pending', { q: 'overdue', status: 'pending' }],
  ]
  test.each(filters.flatMap(([name, f]) => styles.map((s): [string, Filters, Style] => [`${name}, ${s}`, f, s])))(
    'when counts are filtered by %s, then they count what the list shows',
    async (_, f, style) => {
      const user = await signIn(server)
      const tasks = await createTasks(user, seeds)
      const sent = await call(user, style, 'GET', '/counts', { query: f as Query })
      expect(sent.status).toBe(200)
      expect(sent.body).toEqual(expectCounts(tasks, f))
      const listed = await call(user, style, 'GET', '', { query: f as Query })
      expect((sent.body as Counts).all).toBe((listed.body as Task[]).length)
    },
  )

  test('when the user has no tasks, then every count is 0', async () => {
    const user = await signIn(server)
    const sent = await call(user, 'token style', 'GET', '/counts')
    expect(sent.body).toEqual({ all: 0, pending: 0, completed: 0, overdue: 0 })
  })

  test('when an overdue task is completed, then it no longer counts as overdue', async () => {
    const user = await signIn(server)
    const [task] = await createTasks(user, [{ title: 'late', due_date: past }])
    expect((await call(user, 'token style', 'GET', '/counts')).body).toMatchObject({ overdue: 1 })
    await call(user, 'token style', 'PATCH', `/${task?.id}/complete`)
    expect((await call(user, 'token style', 'GET', '/counts')).body).toEqual({ all: 1, pending: 0, completed: 1, overdue: 0 })
  })

  test('when the path names another user, then counts are 403', async () => {
    const user = await signIn(server)
    const other = await signIn(server)
    const sent = await send(server, `/api/${encodeURIComponent(other.user_id)}/tasks/counts`, { token: user.token })
    expectProblem(sent, 403)
  })
})

describe('bulk updates and deletes', () => {
  const seeds: Fields[] = [
    { title: 'a', tags: ['Work'], priority: 'high' },
    { title: 'b', tags: ['home'], completed: true },
    { title: 'c', tags: ['WORK', 'home'], completed: true, priority: 'high' },
    { title: 'd', due_date: '2020-01-01T00:00:00Z' },
    { title: 'e', tags: ['work'], due_date: '2030-01-01T00:00:00Z', priority: 'low' },
    { title: 'f', completed: true, due_date: '2021-01-01T00:00:00Z' },
  ]

  async function setUp() {
    const user = await signIn(server)
    const tasks = await createTasks(user, seeds)
    const other = await signIn(server)
    await createTasks(other, seeds)
    const before = await rowsOf(other.user_id)
    return { user, tasks, untouched: async () => expect(await rowsOf(other.user_id)).toEqual(before) }
  }

  const state = async (user: User) =>
    (
      await server.sql<
        { title: string; completed: boolean }[]
      >`select title, completed from tasks where user_id = ${user.user_id} order by id`
    ).map((r) => `${r.title}:${r.completed ? 'done' : 'open'}`)

  test.each(styles)('when PATCH /tasks?status=pending {completed: true} (%s), then every pending task is completed', async (style) => {
    const { user, tasks, untouched } = await setUp()
    const sent = await call(user, style, 'PATCH', '', { query: { status: 'pending' }, body: { completed: true } })
    expect(sent.status).toBe(200)
    expect(sent.body).toEqual({ count: tasks.filter((t) => !t.completed).length })
    expect(await state(user)).toEqual(['a:done', 'b:done', 'c:done', 'd:done', 'e:done', 'f:done'])
    // The tasks it changed moved their updated_at; the others were not written.
    for (const task of tasks) {
      const now = await getTask(user, task.id)
      if (task.completed) expect(now).toEqual(task)
      else expect(Date.parse(now.updated_at)).toBeGreaterThan(Date.parse(task.updated_at))
    }
    await untouched()
  })

  test.each(styles)('when PATCH /tasks?status=completed&tag=work {completed: false} (%s), then only those reopen', async (style) => {
    const { user, untouched } = await setUp()
    const sent = await call(user, style, 'PATCH', '', { query: { status: 'completed', tag: 'work' }, body: { completed: false } })
    expect(sent.body).toEqual({ count: 1 })
    expect(await state(user)).toEqual(['a:open', 'b:done', 'c:open', 'd:open', 'e:open', 'f:done'])
    await untouched()
  })

  test.each(styles)('when PATCH /tasks has priority and due filters (%s), then only matching tasks change', async (style) => {
    const { user, untouched } = await setUp()
    const high = await call(user, style, 'PATCH', '', {
      query: { priority: ['high', 'urgent'], status: 'pending' },
      body: { completed: true },
    })
    expect(high.body).toEqual({ count: 1 })
    const overdue = await call(user, style, 'PATCH', '', {
      query: { due_before: '2025-01-01T00:00:00Z', status: 'pending' },
      body: { completed: true },
    })
    expect(overdue.body).toEqual({ count: 1 })
    expect(await state(user)).toEqual(['a:done', 'b:done', 'c:done', 'd:done', 'e:open', 'f:done'])
    await untouched()
  })

  test('when PATCH /tasks matches nothing, then the count is 0 and nothing changes', async () => {
    const { user, untouched } = await setUp()
    const before = await rowsOf(user.user_id)
    const sent = await call(user, 'token style', 'PATCH', '', { query: { tag: 'nowhere' }, body: { completed: true } })
    expect(sent.body).toEqual({ count: 0 })
    expect(await rowsOf(user.user_id)).toEqual(before)
    await untouched()
  })

  test.each(styles)('when DELETE /tasks?status=completed (%s), then the completed tasks are gone, the rest kept', async (style) => {
    const { user, untouched } = await setUp()
    const sent = await call(user, style, 'DELETE', '', { query: { status: 'completed' } })
    expect(sent.status).toBe(200)
    expect(sent.body).toEqual({ count: 3 })
    expect(await state(user)).toEqual(['a:open', 'd:open', 'e:open'])
    await untouched()
  })

  test.each(styles)('when DELETE /tasks?status=all&tag=HOME (%s), then every task tagged home is gone', async (style) => {
    const { user, untouched } = await setUp()
    const sent = await call(user, style, 'DELETE', '', { query: { status: 'all', tag: 'HOME' } })
    expect(sent.body).toEqual({ count: 2 })
    expect(await state(user)).toEqual(['a:open', 'd:open', 'e:open', 'f:done'])
    await untouched()
  })

  test.each(styles)('when DELETE /tasks?status=all with q and due filters (%s), then only matches go', async (style) => {
    const { user, untouched } = await setUp()
    const sent = await call(user, style, 'DELETE', '', { query: { status: 'all', due_after: '2020-06-01T00:00:00Z' } })
    expect(sent.body).toEqual({ count: 2 })
    expect(await state(user)).toEqual(['a:open', 'b:done', 'c:done', 'd:open'])
    const titled = await call(user, style, 'DELETE', '', { query: { status: 'pending', q: 'A' } })
    expect(titled.body).toEqual({ count: 1 })
    expect(await state(user)).toEqual(['b:done', 'c:done', 'd:open'])
    await untouched()
  })

  test.each(styles)('when DELETE /tasks?status=all (%s), then every task of the user is gone, and again deletes 0', async (style) => {
    const { user, untouched } = await setUp()
    expect((await call(user, style, 'DELETE', '', { query: { status: 'all' } })).body).toEqual({ count: 6 })
    expect(await rowsOf(user.user_id)).toEqual([])
    expect((await call(user, style, 'DELETE', '', { query: { status: 'all' } })).body).toEqual({ count: 0 })
    await untouched()
  })

  test.each(styles)('when DELETE /tasks has no status (%s), then it is 422 naming status and nothing is deleted', async (style) => {
    const { user, untouched } = await setUp()
    const before = await rowsOf(user.user_id)
    const sent = await call(user, style, 'DELETE', '', { query: { tag: 'work' } })
    expectProblem(sent, 422, ['query status'])
    expect(await rowsOf(user.user_id)).toEqual(before)
    await untouched()
  })

  test.each(styles)('when PUT /tasks (%s), then it is still 405 with Allow, and nothing changes', async (style) => {
    const { user } = await setUp()
    const before = await rowsOf(user.user_id)
    const sent = await call(user, style, 'PUT', '', { body: { completed: true } })
    expectProblem(sent, 405)
    const allow = (sent.headers.get('allow') ?? '').split(',').map((m) => m.trim())
    expect(allow.sort()).toEqual(['DELETE', 'GET', 'HEAD', 'PATCH', 'POST'])
    expect(await rowsOf(user.user_id)).toEqual(before)
  })

  test.each([
    ['PATCH', { completed: true }],
    ['DELETE', undefined],
  ] as const)(
    'when %s on the collection names another user in the path, then it is 403 and their tasks are untouched',
    async (method, body) => {
      const { user, untouched } = await setUp()
      const intruder = await signIn(server)
      const sent = await send(server, `/api/${encodeURIComponent(user.user_id)}/tasks?status=all`, { method, token: intruder.token, body })
      expectProblem(sent, 403)
      expect(await state(user)).toEqual(['a:open', 'b:done', 'c:done', 'd:open', 'e:open', 'f:done'])
      await untouched()
    },
  )
})

describe('bulk PATCH changes only what differs', () => {
  test.each(styles)(
    '"mark all complete" counts and touches only the pending tasks; the completed ones keep their updated_at, %s',
    async (style) => {
      const user = await signIn(server)
      const [done, open1, open2] = await createTasks(user, [{ title: 'done', completed: true }, { title: 'open 1' }, { title: 'open 2' }])
      const sent = await call(user, style, 'PATCH', '', { body: { completed: true } })
      expect(sent.status).toBe(200)
      expect(sent.body).toEqual({ count: 2 })
      expect(await getTask(user, (done as Task).id)).toEqual(done)
      for (const task of [open1, open2] as Task[]) expect((await getTask(user, task.id)).completed).toBe(true)
      const again = await call(user, style, 'PATCH', '', { body: { completed: true } })
      expect(again.body).toEqual({ count: 0 })
    },
  )
})
