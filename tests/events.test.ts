// Live updates (SPEC.md "Live updates", issue 9): the task event stream, fed by the outbox that
// triggers write in each change's transaction and fanned out with LISTEN/NOTIFY, across two API
// servers on one database; replay with Last-Event-ID; reminders claimed by exactly one process.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import type { components } from '../generated/api.js'
import { channel, pruneEvents } from '../src/events/outbox.js'
import { dataOf, type EventStream, openEvents, type ReceivedEvent } from './support/events.js'
import { signIn, startServer, type TestServer } from './support/server.js'

type Task = components['schemas']['Task']

let a: TestServer
let b: TestServer
const open: EventStream[] = []

beforeAll(async () => {
  // Two API processes as far as the database can tell: each has its own pool, listener and reminder rounds.
  ;[a, b] = await Promise.all([
    startServer({ events: { heartbeatMs: 200, maxStreamsPerUser: 3 } }),
    startServer({ events: { heartbeatMs: 200, maxStreamsPerUser: 3 } }),
  ])
  await Promise.all([a.events.listening, b.events.listening])
})
afterAll(async () => {
  for (const stream of open) stream.close()
  await Promise.all([a.close(), b.close()])
})

async function subscribe(...args: Parameters<typeof openEvents>): Promise<EventStream> {
  const stream = await openEvents(...args)
  open.push(stream)
  return stream
}

const ofType = (type: string) => (events: ReceivedEvent[]) => events.filter((e) => e.event === type)

describe('the stream', () => {
  test('a write handled by one process reaches a stream on the other: created, updated, deleted, each as the API answered it', async () => {
    const { token, api } = await signIn(a)
    const stream = await subscribe(b, token)
    expect(stream.response.status).toBe(200)
    expect(stream.response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    expect(stream.response.headers.get('cache-control')).toBe('no-store')

    const created = (await api.POST('/api/tasks', { body: { title: 'live', tags: ['a'] } })).data as Task
    const updated = (
      await api.PATCH('/api/tasks/{task_id}', { params: { path: { task_id: created.id } }, body: { title: 'live, renamed' } })
    ).data as Task
    const completed = (await api.PATCH('/api/tasks/{task_id}/complete', { params: { path: { task_id: created.id } } })).data as Task
    await api.DELETE('/api/tasks/{task_id}', { params: { path: { task_id: created.id } } })

    const events = await stream.until((e) => e.length >= 4)
    expect(dataOf(events)).toEqual([
      { event: 'task.created', data: created },
      { event: 'task.updated', data: updated },
      { event: 'task.updated', data: completed },
      { event: 'task.deleted', data: { id: created.id } },
    ])
    const ids = events.map((e) => Number(e.id))
    expect(ids).toEqual([...ids].sort((x, y) => x - y))
    expect(new Set(ids).size).toBe(4)
  })

  test('the path spelling streams the same events; another user sees none of them', async () => {
    const { user_id, token, api } = await signIn(a)
    const other = await signIn(a)
    const mine = await subscribe(a, token, { path: `/api/${encodeURIComponent(user_id)}/tasks/events` })
    const theirs = await subscribe(a, other.token)
    const created = (await api.POST('/api/tasks', { body: { title: 'mine only' } })).data as Task
    await other.api.POST('/api/tasks', { body: { title: 'theirs' } })

    await mine.until((e) => e.length >= 1)
    await theirs.until((e) => e.length >= 1)
    expect(dataOf(mine.events)).toEqual([{ event: 'task.created', data: created }])
    expect(dataOf(theirs.events).map((e) => e.data.title)).toEqual(['theirs'])
  })

  test('bulk changes and a recurring task completed give one event per task', async () => {
    const { token, api } = await signIn(a)
    const stream = await subscribe(b, token)
    for (const title of ['one', 'two']) await api.POST('/api/tasks', { body: { title } })
    const recurring = (
      await api.POST('/api/tasks', { body: { title: 'daily', due_date: '2030-01-01T09:00:00.000Z', recurrence: 'daily' } })
    ).data as Task
    await stream.until((e) => e.length >= 3)

    const { data: completedRecurring } = await api.PATCH('/api/tasks/{task_id}/complete', { params: { path: { task_id: recurring.id } } })
    const next = completedRecurring?.next_occurrence as Task
    await stream.until((e) => e.length >= 5)
    expect(dataOf(stream.events.slice(3))).toEqual(
      [
        { event: 'task.updated', data: { ...completedRecurring, next_occurrence: undefined } },
        { event: 'task.created', data: next },
      ].map(({ event, data }) => ({ event, data: JSON.parse(JSON.stringify(data)) })),
    )

    // one, two and the next daily occurrence, which rolls over again.
    const { data: bulk } = await api.PATCH('/api/tasks', { params: { query: { status: 'pending' } }, body: { completed: true } })
    expect(bulk?.count).toBe(3)
    await stream.until((e) => ofType('task.updated')(e).length >= 4 && ofType('task.created')(e).length >= 5)
    const { data: removed } = await api.DELETE('/api/tasks', { params: { query: { status: 'all' } } })
    expect(removed?.count).toBe(5)
    await stream.until((e) => ofType('task.deleted')(e).length >= 5)
    expect(stream.events).toHaveLength(5 + 4 + 5)
  })

  test('HEAD answers the headers of a stream and ends', async () => {
    const { token } = await signIn(a)
    const response = await a.fetch('/api/tasks/events', { method: 'HEAD', headers: { Authorization: `Bearer ${token}` } })
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    expect(await response.text()).toBe('')
  })

  test('a comment line keeps an idle stream alive', async () => {
    const { token } = await signIn(a)
    const stream = await subscribe(a, token)
    const started = stream.comments()
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (stream.comments() > started) resolve(clearInterval(poll))
      }, 20)
    })
    expect(stream.events).toEqual([])
  })

  test('streams per user are bounded: one more is a 429 with Retry-After', async () => {
    const { token } = await signIn(a)
    for (let i = 0; i < 3; i++) await subscribe(a, token)
    const refused = await a.fetch('/api/tasks/events', { headers: { Authorization: `Bearer ${token}` } })
    expect(refused.status).toBe(429)
    expect(refused.headers.get('retry-after')).toBe('10')
    expect(refused.headers.get('content-type')).toContain('application/problem+json')
    // The other process has its own bound: the user's fourth tab can connect there.
    expect((await subscribe(b, token)).response.status).toBe(200)
  })

  test('a Last-Event-ID that is not an event id is a 422', async () => {
    const { token } = await signIn(a)
    const response = await a.fetch('/api/tasks/events', { headers: { Authorization: `Bearer ${token}`, 'Last-Event-ID': 'abc' } })
    expect(response.status).toBe(422)
    expect(await response.json()).toMatchObject({ errors: [{ location: 'header', path: 'last-event-id' }] })
  })
})

describe('reconnecting', () => {
  test('Last-Event-ID replays exactly what was missed, in order, none twice, then goes on live', async () => {
    const { token, api } = await signIn(a)
    const first = await subscribe(a, token)
    const seen = (await api.POST('/api/tasks', { body: { title: 'seen' } })).data as Task
    await first.until((e) => e.length === 1)
    first.close()

    const missed: Task[] = []
    for (const title of ['missed 1', 'missed 2', 'missed 3']) missed.push((await api.POST('/api/tasks', { body: { title } })).data as Task)
    await api.DELETE('/api/tasks/{task_id}', { params: { path: { task_id: seen.id } } })

    const again = await subscribe(b, token, { lastEventId: first.events[0]?.id })
    await again.until((e) => e.length >= 4)
    const live = (await api.POST('/api/tasks', { body: { title: 'live again' } })).data as Task
    await again.until((e) => e.length >= 5)
    expect(dataOf(again.events)).toEqual([
      ...missed.map((task) => ({ event: 'task.created', data: task })),
      { event: 'task.deleted', data: { id: seen.id } },
      { event: 'task.created', data: live },
    ])
  })

  test('an id older than what is kept gets a reload event, then the stream goes on from the latest', async () => {
    const { user_id, token, api } = await signIn(a)
    const first = await subscribe(a, token)
    for (const title of ['old 1', 'old 2']) await api.POST('/api/tasks', { body: { title } })
    await first.until((e) => e.length === 2)
    first.close()
    // An hour later, as far as pruning can tell: the user's events are gone.
    await a.sql`update task_events set created_at = now() - interval '2 hours' where user_id = ${user_id}`
    expect(await pruneEvents(a.sql)).toBeGreaterThanOrEqual(2)

    const again = await subscribe(b, token, { lastEventId: first.events[0]?.id })
    await again.until((e) => e.length >= 1)
    expect(again.events[0]).toEqual({ id: first.events[1]?.id, event: 'reload', data: '{}' })
    const live = (await api.POST('/api/tasks', { body: { title: 'after reload' } })).data as Task
    await again.until((e) => e.length >= 2)
    expect(dataOf(again.events.slice(1))).toEqual([{ event: 'task.created', data: live }])

    // The latest id is current: reconnecting with it replays nothing and reloads nothing.
    const latest = await subscribe(a, token, { lastEventId: again.events[1]?.id })
    await api.POST('/api/tasks', { body: { title: 'next' } })
    await latest.until((e) => e.length >= 1)
    expect(latest.events.map((e) => e.event)).toEqual(['task.created'])
  })

  test("an id newer than any of the user's events (a restored database) gets a reload event too", async () => {
    const { token, api } = await signIn(a)
    const created = (await api.POST('/api/tasks', { body: { title: 'before the restore' } })).data as Task
    const stream = await subscribe(a, token, { lastEventId: '9007199254740' })
    await stream.until((e) => e.length >= 1)
    const latest = stream.events[0]?.id
    expect(stream.events[0]).toEqual({ id: latest, event: 'reload', data: '{}' })
    const after = (await api.POST('/api/tasks', { body: { title: 'after the restore' } })).data as Task
    await stream.until((e) => e.length >= 2)
    expect(dataOf(stream.events.slice(1))).toEqual([{ event: 'task.created', data: after }])
    expect(Number(latest)).toBeGreaterThan(0)
    expect(created.id).toBeLessThan(after.id)
  })

  test('the listener reconnects by itself when its connection drops, and streams catch up', async () => {
    const { token, api } = await signIn(a)
    const stream = await subscribe(b, token)
    // Every API listener on this database loses its connection (as in a database restart).
    await a.sql`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'todo-api events'`
    const created = (await api.POST('/api/tasks', { body: { title: 'while reconnecting' } })).data as Task
    await stream.until((e) => e.length >= 1)
    expect(dataOf(stream.events)).toEqual([{ event: 'task.created', data: created }])
    const later = (await api.POST('/api/tasks', { body: { title: 'after reconnecting' } })).data as Task
    await stream.until((e) => e.length >= 2)
    expect(dataOf(stream.events.slice(1))).toEqual([{ event: 'task.created', data: later }])
  })
})

describe('a lost notification', () => {
  test('a change no process told of (made outside the API) reaches the stream with the next sweep', async () => {
    const { user_id, token } = await signIn(a)
    const stream = await subscribe(b, token)
    const [row] = await a.sql<{ id: number }[]>`insert into tasks (user_id, title) values (${user_id}, 'from psql') returning id`
    await stream.until((e) => e.length >= 1)
    expect(dataOf(stream.events)).toEqual([{ event: 'task.created', data: expect.objectContaining({ id: row?.id, title: 'from psql' }) }])
  })
})

describe('notifications', () => {
  test('a burst of writes costs one NOTIFY per gap, not one per write, and every event still arrives', async () => {
    const gap = 300
    // The default heartbeat (15 s): no sweep delivers these events, only the notifications do.
    const server = await startServer({ events: { notifyGapMs: gap } })
    try {
      await server.events.listening
      const { user_id, token, api } = await signIn(server)
      const notified: string[] = []
      const listening = await server.sql.listen(channel, (payload) => {
        if (payload === user_id) notified.push(payload)
      })
      const stream = await subscribe(server, token)
      const writes = 30
      const started = performance.now()
      await Promise.all(Array.from({ length: writes }, (_, i) => api.POST('/api/tasks', { body: { title: `burst ${i}` } })))
      const events = await stream.until((e) => e.length >= writes)
      const elapsed = performance.now() - started
      await listening.unlisten()
      expect(events.map((e) => e.event)).toEqual(Array(writes).fill('task.created'))
      // n notifications sent while the burst ran take at least (n - 1) gaps of it; without the gap
      // each write sends its own.
      expect(notified.length).toBeGreaterThanOrEqual(1)
      expect(notified.length).toBeLessThanOrEqual(Math.floor(elapsed / gap) + 1)
      expect(notified.length).toBeLessThan(writes)
    } finally {
      await server.close()
    }
  })
})

describe('timeouts', () => {
  test('a stream outlives the HTTP request timeout: that bounds receiving a request, not answering it', async () => {
    const server = await startServer({ timeouts: { request: 600, headers: 300 }, events: { heartbeatMs: 100 } })
    try {
      const { token } = await signIn(server)
      const stream = await openEvents(server, token)
      let ended = false
      void stream.ended.then(() => {
        ended = true
      })
      // Three times the request timeout, or until the stream ends (which it must not).
      const started = Date.now()
      await new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (Date.now() - started > 1800 || ended) resolve(clearInterval(poll))
        }, 50)
      })
      expect(ended).toBe(false)
      expect(stream.comments()).toBeGreaterThanOrEqual(10)
      stream.close()
    } finally {
      await server.close()
    }
  })
})

describe('shutdown', () => {
  test('closing the hub (SIGTERM) ends its open streams at once', async () => {
    const server = await startServer()
    try {
      const { token } = await signIn(server)
      const stream = await openEvents(server, token)
      await server.events.close()
      await stream.ended
    } finally {
      await server.close()
    }
  })
})

describe('reminders', () => {
  test('each due reminder is delivered once, by one of the two processes, and is no task.updated', async () => {
    const { user_id, token, api } = await signIn(a)
    const streamA = await subscribe(a, token)
    const streamB = await subscribe(b, token)
    const soon = new Date(Date.now() + 1500).toISOString()
    const past = '2020-01-01T00:00:00.000Z' // fell due while no process ran
    const tasks: Task[] = []
    for (let i = 0; i < 10; i++) {
      tasks.push((await api.POST('/api/tasks', { body: { title: `remind ${i}`, remind_at: i % 2 ? soon : past } })).data as Task)
    }
    const completed = (await api.POST('/api/tasks', { body: { title: 'done already', remind_at: past, completed: true } })).data as Task

    for (const stream of [streamA, streamB]) await stream.until((e) => ofType('reminder')(e).length >= 10, 10_000)
    const reminded = dataOf(ofType('reminder')(streamA.events)).map((e) => e.data)
    expect(reminded.map((t) => t.id).sort()).toEqual(tasks.map((t) => t.id).sort())
    expect(reminded.find((t) => t.id === tasks[0]?.id)).toEqual(tasks[0])
    expect(streamB.events).toEqual(streamA.events)
    // Once each, though both processes look for due reminders every second.
    const rows = await a.sql<{ task_id: number; n: number }[]>`
      select task_id, count(*)::int as n from task_events where user_id = ${user_id} and type = 'reminder' group by task_id
    `
    expect(rows).toHaveLength(10)
    expect(rows.every((r) => r.n === 1)).toBe(true)
    expect(rows.some((r) => r.task_id === completed.id)).toBe(false)
    expect(ofType('task.updated')(streamA.events)).toEqual([])
    // The claim changed nothing a client sees: the task and its ETag are as they were.
    const { data: again, response } = await api.GET('/api/tasks/{task_id}', { params: { path: { task_id: tasks[0]?.id as number } } })
    expect(again).toEqual(tasks[0])
    expect(response.headers.get('etag')).toBeTruthy()
  })

  test('a new remind_at brings a new reminder', async () => {
    const { token, api } = await signIn(a)
    const stream = await subscribe(a, token)
    const task = (await api.POST('/api/tasks', { body: { title: 'twice', remind_at: '2021-01-01T00:00:00.000Z' } })).data as Task
    await stream.until((e) => ofType('reminder')(e).length === 1, 10_000)
    const { data: moved } = await api.PATCH('/api/tasks/{task_id}', {
      params: { path: { task_id: task.id } },
      body: { remind_at: '2022-01-01T00:00:00.000Z' },
    })
    await stream.until((e) => ofType('reminder')(e).length === 2, 10_000)
    expect(dataOf(ofType('reminder')(stream.events)).map((e) => e.data.remind_at)).toEqual([task.remind_at, moved?.remind_at])
  })
})
