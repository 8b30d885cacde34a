// The SDK's subscribe() (issue 9, point 3): task events read with fetch streaming, typed from the
// contract, against the live server; reconnection with Last-Event-ID across a real broken connection
// (a TCP relay that cuts it); stopping by signal or by `break`; refusals as TodoApiError; and the
// Server-Sent Events parser fed exactly the bytes a test chooses, however they are split.
import { createServer, type Socket, connect as tcpConnect } from 'node:net'
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { createTodoClient, type Task, type TaskEvent, TodoApiError, type TodoClient, type TodoClientOptions } from '../src/sdk/client.js'
import { newUser, signIn, startServer, type TestServer, tokenFor } from './support/server.js'

let server: TestServer
beforeAll(async () => {
  server = await startServer()
  await server.events.listening
})
afterAll(() => server.close())

/** The SDK through the test server's checked fetch (every answer is validated against the contract). */
function sdk(on: TestServer, token: TodoClientOptions['token']) {
  return createTodoClient({
    baseUrl: on.url,
    token,
    fetch: (request) => on.fetch(new URL(request.url).pathname, request),
  })
}

interface Subscription {
  events: TaskEvent[]
  /** Resolves once `done(events)` holds; rejects after 5 s with what came. */
  until(done: (events: TaskEvent[]) => boolean): Promise<TaskEvent[]>
  /** How the iteration ended: undefined when it returned, else what it threw. */
  ended: Promise<unknown>
  /** Resolves once the stream has opened `times` times. */
  opened(times?: number): Promise<void>
  retries: { delayMs: number; error: unknown }[]
  abort(): void
}

/** Iterates `api.subscribe()` in the background, collecting its events; `stopAfter` breaks out of the loop. */
function follow(api: TodoClient, options: Parameters<TodoClient['subscribe']>[0] = {}, stopAfter = Number.POSITIVE_INFINITY): Subscription {
  const controller = new AbortController()
  const events: TaskEvent[] = []
  const retries: Subscription['retries'] = []
  const waiting = new Set<() => void>()
  let opens = 0
  const changed = () => {
    for (const check of waiting) check()
  }
  const ended = (async () => {
    try {
      for await (const event of api.subscribe({
        signal: controller.signal,
        onOpen: () => {
          opens++
          changed()
        },
        onRetry: (delayMs, error) => {
          retries.push({ delayMs, error })
          changed()
        },
        ...options,
      })) {
        events.push(event)
        changed()
        if (events.length >= stopAfter) break
      }
      return undefined
    } catch (error) {
      return error
    } finally {
      changed()
    }
  })()
  const until = (done: () => boolean) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting.delete(check)
        reject(new Error(`timed out; events: ${JSON.stringify(events)}; retries: ${JSON.stringify(retries)}`))
      }, 5000)
      const check = () => {
        if (!done()) return
        clearTimeout(timer)
        waiting.delete(check)
        resolve()
      }
      waiting.add(check)
      check()
    })
  return {
    events,
    until: (done) => until(() => done(events)).then(() => events),
    ended,
    opened: (times = 1) => until(() => opens >= times),
    retries,
    abort: () => controller.abort(),
  }
}

/**
 * A TCP relay in front of the server: `cut()` destroys its connections and refuses new ones until
 * `restore()`, as a network failure would. `connections` lists those it relayed, in order.
 */
async function relay(target: string) {
  const { hostname, port } = new URL(target)
  const sockets = new Set<Socket>()
  const connections: { closed: Promise<void> }[] = []
  let down = false
  const proxy = createServer((client) => {
    if (down) return void client.destroy()
    const upstream = tcpConnect(Number(port), hostname)
    connections.push({ closed: new Promise((resolve) => client.once('close', () => resolve())) })
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(from)
      from.pipe(to)
      from.on('error', () => {})
      from.on('close', () => {
        to.destroy()
        sockets.delete(from)
      })
    }
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  const address = proxy.address()
  return {
    url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    connections,
    cut() {
      down = true
      for (const socket of sockets) socket.destroy()
    },
    restore() {
      down = false
    },
    close() {
      this.cut()
      return new Promise((resolve) => proxy.close(resolve))
    },
  }
}

const task = (result: { data?: Task }) => result.data as Task

describe('subscribe() against the live server', () => {
  test('when tasks are created, changed and deleted, then each event arrives typed, with the task as the REST API answered', async () => {
    const { token, api } = await signIn(server)
    const live = follow(sdk(server, token))
    await live.opened()
    const created = task(await api.POST('/api/tasks', { body: { title: 'typed', tags: ['x'] } }))
    const completed = task(await api.PATCH('/api/tasks/{task_id}/complete', { params: { path: { task_id: created.id } } }))
    await api.DELETE('/api/tasks/{task_id}', { params: { path: { task_id: created.id } } })

    const events = await live.until((e) => e.length >= 3)
    expect(events).toEqual([
      { type: 'task.created', id: expect.stringMatching(/^\d+$/), task: created },
      { type: 'task.updated', id: expect.stringMatching(/^\d+$/), task: completed },
      { type: 'task.deleted', id: expect.stringMatching(/^\d+$/), task_id: created.id },
    ])
    // Typed: the discriminant narrows to the task or the deleted id.
    const titles = events.map((event) => (event.type === 'task.deleted' ? event.task_id : event.type === 'reload' ? '' : event.task.title))
    expect(titles).toEqual(['typed', 'typed', created.id])
    live.abort()
    expect(await live.ended).toBeUndefined()
  })

  test('when given user_id, then it streams from the path spelling; lastEventId resumes after that event', async () => {
    const { user_id, token, api } = await signIn(server)
    const live = follow(sdk(server, token), { user_id })
    await live.opened()
    const first = task(await api.POST('/api/tasks', { body: { title: 'first' } }))
    const [seen] = await live.until((e) => e.length >= 1)
    live.abort()
    await live.ended
    const second = task(await api.POST('/api/tasks', { body: { title: 'second' } }))

    const resumed = follow(sdk(server, token), { lastEventId: seen?.id })
    expect(await resumed.until((e) => e.length >= 1)).toEqual([{ type: 'task.created', id: expect.any(String), task: second }])
    expect(seen).toMatchObject({ type: 'task.created', task: first })
    resumed.abort()
  })

  test('when a due reminder comes, then it is a reminder event with the task', async () => {
    const { token, api } = await signIn(server)
    const live = follow(sdk(server, token))
    await live.opened()
    const due = task(await api.POST('/api/tasks', { body: { title: 'remind me', remind_at: '2020-01-01T00:00:00.000Z' } }))
    const events = await live.until((e) => e.some((event) => event.type === 'reminder'))
    expect(events.find((event) => event.type === 'reminder')).toEqual({ type: 'reminder', id: expect.any(String), task: due })
    live.abort()
  })
})

describe('reconnecting', () => {
  test('when the connection breaks, then it reconnects with Last-Event-ID and a fresh token: what happened meanwhile arrives once, in order', async () => {
    const { user_id, api } = await signIn(server)
    const cable = await relay(server.url)
    const tokens: string[] = []
    const sent: { authorization: string | null; lastEventId: string | null }[] = []
    const client = createTodoClient({
      baseUrl: cable.url,
      // A new token for every connection, as a session refreshing its JWT would give.
      token: async () => {
        tokens.push(await tokenFor(user_id, { n: tokens.length }))
        return tokens.at(-1)
      },
      fetch: (request) => {
        sent.push({ authorization: request.headers.get('authorization'), lastEventId: request.headers.get('last-event-id') })
        return fetch(request)
      },
    })
    const live = follow(client, { maxRetryDelayMs: 50 })
    try {
      await live.opened()
      const a = task(await api.POST('/api/tasks', { body: { title: 'a' } }))
      const [first] = await live.until((e) => e.length === 1)

      cable.cut()
      await live.until(() => live.retries.length >= 2)
      // While it cannot connect: these must come by replay.
      const b = task(await api.POST('/api/tasks', { body: { title: 'b' } }))
      const renamed = task(await api.PATCH('/api/tasks/{task_id}', { params: { path: { task_id: a.id } }, body: { title: 'a2' } }))
      await api.DELETE('/api/tasks/{task_id}', { params: { path: { task_id: a.id } } })
      cable.restore()
      await live.opened(2)
      const c = task(await api.POST('/api/tasks', { body: { title: 'c' } }))

      const events = await live.until((e) => e.length >= 5)
      expect(events.map(({ id: _, ...event }) => event)).toEqual([
        { type: 'task.created', task: a },
        { type: 'task.created', task: b },
        { type: 'task.updated', task: renamed },
        { type: 'task.deleted', task_id: a.id },
        { type: 'task.created', task: c },
      ])
      const ids = events.map((event) => Number(event.id))
      expect(ids).toEqual([...new Set(ids)].sort((x, y) => x - y))

      // The first request had no Last-Event-ID; every later one had the last id received.
      expect(sent[0]?.lastEventId).toBeNull()
      expect(sent.length).toBeGreaterThanOrEqual(3)
      expect(new Set(sent.slice(1).map((request) => request.lastEventId))).toEqual(new Set([first?.id]))
      // The token function ran for every connection, and each sent its own token.
      expect(sent.map((request) => request.authorization)).toEqual(tokens.map((token) => `Bearer ${token}`))
      // A network failure is what onRetry reported; the waits stayed under the cap.
      expect(live.retries[0]?.error).toMatchObject({ name: 'TypeError' })
      for (const { delayMs } of live.retries) expect(delayMs).toBeLessThanOrEqual(50)
    } finally {
      live.abort()
      await cable.close()
    }
  })

  test('when the connection breaks before any event came, then it resumes from the id the stream began with: nothing is lost', async () => {
    const { token, api } = await signIn(server)
    const cable = await relay(server.url)
    const live = follow(createTodoClient({ baseUrl: cable.url, token }), { maxRetryDelayMs: 50 })
    try {
      await live.opened()
      cable.cut()
      const missed = task(await api.POST('/api/tasks', { body: { title: 'missed' } }))
      cable.restore()
      await live.opened(2)
      const after = task(await api.POST('/api/tasks', { body: { title: 'after' } }))
      expect(await live.until((e) => e.length >= 2)).toEqual([
        { type: 'task.created', id: expect.any(String), task: missed },
        { type: 'task.created', id: expect.any(String), task: after },
      ])
    } finally {
      live.abort()
      await cable.close()
    }
  })

  test('when the server ends the stream (shutdown), then it retries the 503 with backoff until aborted, and ends quietly', async () => {
    const closing = await startServer()
    try {
      const { token } = await signIn(closing)
      const live = follow(sdk(closing, token), { maxRetryDelayMs: 40 })
      await live.opened()
      await closing.events.close()
      await live.until(() => live.retries.length >= 3)
      expect(live.retries[0]?.error).toBeUndefined() // the stream ended: no error
      const refused = live.retries[1]?.error
      expect(refused).toBeInstanceOf(TodoApiError)
      expect((refused as TodoApiError).problem).toMatchObject({ status: 503, type: 'urn:todo-api:problem:unavailable' })
      live.abort()
      expect(await live.ended).toBeUndefined()
    } finally {
      await closing.close()
    }
  })

  test('when there are too many streams (429), then it waits as long as Retry-After says, and an abort during the wait ends it at once', async () => {
    const limited = await startServer({ events: { maxStreamsPerUser: 1 } })
    try {
      const { token } = await signIn(limited)
      const first = follow(sdk(limited, token))
      await first.opened()
      const second = follow(sdk(limited, token), { maxRetryDelayMs: 1000 })
      await second.until(() => second.retries.length >= 1)
      expect(second.retries[0]?.delayMs).toBe(10_000)
      expect(second.retries[0]?.error).toMatchObject({ problem: { status: 429 } })
      second.abort()
      expect(await second.ended).toBeUndefined()
      first.abort()
    } finally {
      await limited.close()
    }
  })
})

describe('stopping', () => {
  test('when the signal aborts, then the iteration ends without an error and the connection closes', async () => {
    const { token, api } = await signIn(server)
    const cable = await relay(server.url)
    const live = follow(createTodoClient({ baseUrl: cable.url, token }))
    await live.opened()
    await api.POST('/api/tasks', { body: { title: 'one' } })
    await live.until((e) => e.length === 1)
    expect(cable.connections).toHaveLength(1)
    live.abort()
    expect(await live.ended).toBeUndefined()
    await cable.connections[0]?.closed
    await cable.close()
  })

  test('when the loop breaks, then the request is aborted and the connection closes', async () => {
    const { token, api } = await signIn(server)
    const cable = await relay(server.url)
    const live = follow(createTodoClient({ baseUrl: cable.url, token }), {}, 1)
    await live.opened()
    await api.POST('/api/tasks', { body: { title: 'only this one' } })
    expect(await live.ended).toBeUndefined()
    expect(live.events).toHaveLength(1)
    expect(cable.connections).toHaveLength(1)
    await cable.connections[0]?.closed
    await cable.close()
  })

  test('when the signal is aborted already, then nothing is requested', async () => {
    let requested = 0
    const api = createTodoClient({
      baseUrl: server.url,
      fetch: (request) => {
        requested++
        return fetch(request)
      },
    })
    const events: TaskEvent[] = []
    for await (const event of api.subscribe({ signal: AbortSignal.abort() })) events.push(event)
    expect(events).toEqual([])
    expect(requested).toBe(0)
  })
})

describe('refusals', () => {
  test('when the token is refused (401), then it stops with a TodoApiError carrying the problem, without retrying', async () => {
    const live = follow(sdk(server, 'not-a-jwt'))
    const error = await live.ended
    expect(error).toBeInstanceOf(TodoApiError)
    expect((error as TodoApiError).problem).toMatchObject({ status: 401, type: 'urn:todo-api:problem:unauthorized' })
    expect(live.retries).toEqual([])
  })

  test("when the path user_id is another user's (403) or lastEventId is not an id (422), then it stops with that problem", async () => {
    const { token } = await signIn(server)
    const forbidden = await follow(sdk(server, token), { user_id: newUser() }).ended
    expect((forbidden as TodoApiError).problem).toMatchObject({ status: 403, type: 'urn:todo-api:problem:forbidden' })
    const invalid = await follow(sdk(server, token), { lastEventId: 'abc' }).ended
    expect((invalid as TodoApiError).problem).toMatchObject({ status: 422, errors: [{ location: 'header', path: 'last-event-id' }] })
  })

  test('when a page of another origin subscribes, then the preflight allows its Authorization and Last-Event-ID headers', async () => {
    const preflight = await fetch(`${server.url}/api/tasks/events`, {
      method: 'OPTIONS',
      headers: {
        Origin: 'http://localhost:3000',
        'Access-Control-Request-Method': 'GET',
        'Access-Control-Request-Headers': 'authorization,last-event-id',
      },
    })
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('last-event-id')
  })
})

describe('the event stream parser', () => {
  // Every line ending (CRLF, CR, LF), a comment, retry, data on two lines, non-ASCII text, a field
  // without the space, an event the contract does not name, an id alone, an event with no data, and
  // an unfinished event at the end (dropped).
  const stream = new TextEncoder().encode(
    [
      ': hello\r\nretry: 40\r\n\r\n',
      'id: 7\r\nevent: task.created\r\ndata: {"id":1,\r\ndata: "title":"café ✓ 😀"}\r\n\r\n',
      'id: 8\revent: task.deleted\rdata: {"id":41}\r\r',
      'id: 9\nevent: task.archived\ndata: {}\n\n',
      'event: task.updated\ndata:{"id":2}\n\n',
      'id: 10\nevent: reload\ndata: {}\n\n',
      'event: task.created\n\n',
      'id: 11\n\n',
      'id: 12\nevent: task.created\ndata: {"id":3}',
    ].join(''),
  )
  const expected: TaskEvent[] = [
    { type: 'task.created', id: '7', task: { id: 1, title: 'café ✓ 😀' } as Task },
    { type: 'task.deleted', id: '8', task_id: 41 },
    { type: 'task.updated', id: '9', task: { id: 2 } as Task },
    { type: 'reload', id: '10' },
  ]

  /** A fetch whose first answer is `chunks`, then a stream that stays open until aborted; it records what it was asked. */
  function scripted(chunks: Uint8Array[]) {
    const requests: Request[] = []
    const fetch = async (request: Request) => {
      requests.push(request)
      const first = requests.length === 1
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          if (!first) return request.signal.addEventListener('abort', () => controller.error(request.signal.reason))
          for (const chunk of chunks) controller.enqueue(chunk)
          controller.close()
        },
      })
      return new Response(body, { headers: { 'Content-Type': 'text/event-stream' } })
    }
    return { fetch, requests }
  }

  const split = (bytes: Uint8Array, at: number[]) => [0, ...at].map((from, i) => bytes.slice(from, [...at, bytes.length][i]))

  test('when the stream comes whole, then the events are exactly those, retry sets the wait and the last id is sent on reconnecting', async () => {
    const { fetch, requests } = scripted([stream])
    const live = follow(createTodoClient({ baseUrl: 'http://api.test', fetch }))
    await live.until(() => requests.length === 2)
    expect(live.events).toEqual(expected)
    // The server's retry (40 ms), less the jitter of at most a half; the id of the event without data counts.
    expect(live.retries).toHaveLength(1)
    expect(live.retries[0]?.delayMs).toBeGreaterThanOrEqual(20)
    expect(live.retries[0]?.delayMs).toBeLessThanOrEqual(40)
    expect(requests[1]?.headers.get('last-event-id')).toBe('11')
    expect(requests[0]?.headers.get('accept')).toBe('text/event-stream')
    live.abort()
    expect(await live.ended).toBeUndefined()
  })

  test('when the stream comes one byte at a time (a CRLF and each UTF-8 character split), then the events are the same', async () => {
    const { fetch, requests } = scripted(
      split(
        stream,
        Array.from({ length: stream.length - 1 }, (_, i) => i + 1),
      ),
    )
    const live = follow(createTodoClient({ baseUrl: 'http://api.test', fetch }))
    await live.until(() => requests.length === 2)
    expect(live.events).toEqual(expected)
    expect(requests[1]?.headers.get('last-event-id')).toBe('11')
    live.abort()
  })

  test('when the stream is split in two at any byte, then the events are the same', async () => {
    for (let at = 1; at < stream.length; at++) {
      const { fetch } = scripted(split(stream, [at]))
      const live = follow(createTodoClient({ baseUrl: 'http://api.test', fetch }), {}, expected.length)
      await live.ended
      expect({ at, events: live.events }).toEqual({ at, events: expected })
    }
  })
})
