// The SDK (src/sdk/client.ts) against the live server: every operation of the contract in both
// spellings, every way of giving the token, typed problems, and pages() over Link rel="next".
// Requests go through createTodoClient only; its `fetch` option routes them through the test
// server's checked fetch, so every response is also validated against the contract.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { SignJWT } from 'jose'
import { createTodoClient, etagOf, type ListQuery, nextLink, type Task, TodoApiError, type TodoClientOptions } from '../src/sdk/client.js'
import { newUser, secret, startServer, type TestServer, tokenFor } from './support/server.js'

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

/** The fetch the SDK is given: the test server's, which checks every response against the contract. */
function checkedFetch(calls?: Request[]) {
  return (request: Request) => {
    calls?.push(request.clone())
    const url = new URL(request.url)
    return server.fetch(`${url.pathname}${url.search}`, request)
  }
}

function sdk(token?: TodoClientOptions['token'], calls?: Request[]) {
  return createTodoClient({ baseUrl: server.url, token, fetch: checkedFetch(calls) })
}

async function user() {
  const user_id = newUser()
  return { user_id, token: await tokenFor(user_id) }
}

const unauthorized = 'urn:todo-api:problem:unauthorized'

describe('every task operation through the SDK', () => {
  test('when a task goes through every operation in the path style, then each answers its status and data', async () => {
    const { user_id, token } = await user()
    const api = sdk(token)

    const created = await api.POST('/api/{user_id}/tasks', {
      params: { path: { user_id } },
      body: { title: 'Buy milk', description: '2 litres' },
    })
    expect(created.response.status).toBe(201)
    const task = created.data
    if (!task) throw new Error(`not created: ${JSON.stringify(created.error)}`)
    expect(task).toMatchObject({ user_id, title: 'Buy milk', description: '2 litres', completed: false })
    expect(created.response.headers.get('location')).toBe(`/api/${user_id}/tasks/${task.id}`)
    const path = { user_id, task_id: task.id }

    const fetched = await api.GET('/api/{user_id}/tasks/{task_id}', { params: { path } })
    expect(fetched.response.status).toBe(200)
    expect(fetched.data).toEqual(task)

    const listed = await api.GET('/api/{user_id}/tasks', { params: { path: { user_id }, query: { status: 'pending' } } })
    expect(listed.response.status).toBe(200)
    expect(listed.data).toEqual([task])

    const replaced = await api.PUT('/api/{user_id}/tasks/{task_id}', { params: { path }, body: { title: 'Buy oat milk' } })
    expect(replaced.response.status).toBe(200)
    expect(replaced.data).toMatchObject({ id: task.id, title: 'Buy oat milk', description: '2 litres', completed: false })

    const patched = await api.PATCH('/api/{user_id}/tasks/{task_id}', { params: { path }, body: { description: null } })
    expect(patched.response.status).toBe(200)
    expect(patched.data).toMatchObject({ title: 'Buy oat milk', description: null })

    const toggled = await api.PATCH('/api/{user_id}/tasks/{task_id}/complete', { params: { path } })
    expect(toggled.response.status).toBe(200)
    expect(toggled.data?.completed).toBe(true)
    const toggledBack = await api.PATCH('/api/{user_id}/tasks/{task_id}/complete', { params: { path } })
    expect(toggledBack.data?.completed).toBe(false)
    const set = await api.PATCH('/api/{user_id}/tasks/{task_id}/complete', { params: { path }, body: { completed: true } })
    expect(set.response.status).toBe(200)
    expect(set.data?.completed).toBe(true)
    const setAgain = await api.PATCH('/api/{user_id}/tasks/{task_id}/complete', { params: { path }, body: { completed: true } })
    expect(setAgain.data?.completed).toBe(true)

    const deleted = await api.DELETE('/api/{user_id}/tasks/{task_id}', { params: { path } })
    expect(deleted.response.status).toBe(204)
    expect(deleted.data).toBeUndefined()
    expect(deleted.error).toBeUndefined()

    const gone = await api.GET('/api/{user_id}/tasks/{task_id}', { params: { path } })
    expect(gone.response.status).toBe(404)
    expect(gone.error?.type).toBe('urn:todo-api:problem:not-found')
  })

  test('when a task goes through every operation in the token style, then each answers its status and data', async () => {
    const { user_id, token } = await user()
    const api = sdk(token)

    const created = await api.POST('/api/tasks', { body: { title: 'Call mum', completed: true } })
    expect(created.response.status).toBe(201)
    const task = created.data
    if (!task) throw new Error(`not created: ${JSON.stringify(created.error)}`)
    expect(task).toMatchObject({ user_id, title: 'Call mum', description: null, completed: true })
    expect(created.response.headers.get('location')).toBe(`/api/tasks/${task.id}`)
    const path = { task_id: task.id }

    const fetched = await api.GET('/api/tasks/{task_id}', { params: { path } })
    expect(fetched.response.status).toBe(200)
    expect(fetched.data).toEqual(task)

    const listed = await api.GET('/api/tasks')
    expect(listed.response.status).toBe(200)
    expect(listed.data).toEqual([task])
    expect((await api.GET('/api/tasks', { params: { query: { status: 'pending' } } })).data).toEqual([])

    const replaced = await api.PUT('/api/tasks/{task_id}', {
      params: { path },
      body: { title: 'Call dad', description: 'Sunday', completed: false },
    })
    expect(replaced.response.status).toBe(200)
    expect(replaced.data).toMatchObject({ id: task.id, title: 'Call dad', description: 'Sunday', completed: false })

    const patched = await api.PATCH('/api/tasks/{task_id}', { params: { path }, body: { title: 'Call both' } })
    expect(patched.response.status).toBe(200)
    expect(patched.data).toMatchObject({ title: 'Call both', description: 'Sunday', completed: false })

    const toggled = await api.PATCH('/api/tasks/{task_id}/complete', { params: { path } })
    expect(toggled.response.status).toBe(200)
    expect(toggled.data?.completed).toBe(true)
    const set = await api.PATCH('/api/tasks/{task_id}/complete', { params: { path }, body: { completed: false } })
    expect(set.response.status).toBe(200)
    expect(set.data?.completed).toBe(false)
    const setAgain = await api.PATCH('/api/tasks/{task_id}/complete', { params: { path }, body: { completed: false } })
    expect(setAgain.data?.completed).toBe(false)

    const deleted = await api.DELETE('/api/tasks/{task_id}', { params: { path } })
    expect(deleted.response.status).toBe(204)
    expect(deleted.data).toBeUndefined()

    const gone = await api.DELETE('/api/tasks/{task_id}', { params: { path } })
    expect(gone.response.status).toBe(404)
    expect(gone.error?.type).toBe('urn:todo-api:problem:not-found')
  })

  test('when the public operations are called without a token, then they answer 200 with their data', async () => {
    const api = sdk()
    const health = await api.GET('/health')
    expect(health.response.status).toBe(200)
    expect(health.data).toEqual({ status: 'ok' })

    const ready = await api.GET('/ready')
    expect(ready.response.status).toBe(200)
    expect(ready.data).toEqual({ status: 'ok' })

    const contract = await api.GET('/openapi.json')
    expect(contract.response.status).toBe(200)
    expect(contract.data).toMatchObject({ openapi: expect.stringMatching(/^3\.1\./) })
    expect(Object.keys(contract.data?.paths as object)).toEqual(
      expect.arrayContaining(['/api/tasks', '/api/tasks/{task_id}/complete', '/api/{user_id}/tasks/{task_id}']),
    )
  })

  test("when the path user_id is another user's, then error is the 403 problem", async () => {
    const { token } = await user()
    const { error, response } = await sdk(token).GET('/api/{user_id}/tasks', { params: { path: { user_id: newUser() } } })
    expect(response.status).toBe(403)
    expect(error).toMatchObject({ type: 'urn:todo-api:problem:forbidden', status: 403, detail: expect.any(String) })
  })
})

describe('the token', () => {
  test('when the token is a string, then every request carries it as a Bearer header', async () => {
    const { user_id, token } = await user()
    const calls: Request[] = []
    const api = sdk(token, calls)
    const { data } = await api.POST('/api/tasks', { body: { title: 'with a string token' } })
    expect(data?.user_id).toBe(user_id)
    expect((await api.GET('/api/{user_id}/tasks', { params: { path: { user_id } } })).data).toEqual([data])
    expect(calls.map((call) => call.headers.get('authorization'))).toEqual([`Bearer ${token}`, `Bearer ${token}`])
  })

  test('when the token is a function, then it is called before every request', async () => {
    const { user_id, token } = await user()
    let called = 0
    const api = sdk(() => {
      called++
      return token
    })
    await api.POST('/api/tasks', { body: { title: 'one' } })
    await api.POST('/api/tasks', { body: { title: 'two' } })
    const { data } = await api.GET('/api/tasks', { params: { query: { sort: 'title', order: 'asc' } } })
    expect(data?.map((task) => [task.user_id, task.title])).toEqual([
      [user_id, 'one'],
      [user_id, 'two'],
    ])
    expect(called).toBe(3)
  })

  test('when an async token function changes its answer, then the next request uses the new token', async () => {
    const alice = await user()
    const bob = await user()
    let current = alice.token
    let called = 0
    const api = sdk(async () => {
      called++
      await new Promise((resolve) => setTimeout(resolve, 1))
      return current
    })

    const { data: task } = await api.POST('/api/tasks', { body: { title: "Alice's" } })
    if (!task) throw new Error('not created')
    expect(task.user_id).toBe(alice.user_id)

    current = bob.token
    const hidden = await api.GET('/api/tasks/{task_id}', { params: { path: { task_id: task.id } } })
    expect(hidden.response.status).toBe(404)
    expect((await api.GET('/api/tasks')).data).toEqual([])
    const { data: own } = await api.POST('/api/tasks', { body: { title: "Bob's" } })
    expect(own?.user_id).toBe(bob.user_id)

    current = alice.token
    expect((await api.GET('/api/tasks')).data).toEqual([task])
    expect(called).toBe(5)
  })

  test('when there is no token, then error is the typed 401 problem and no Authorization header is sent', async () => {
    const calls: Request[] = []
    const { data, error, response } = await sdk(undefined, calls).GET('/api/tasks')
    expect(calls[0]?.headers.has('authorization')).toBe(false)
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/)
    expect(data).toBeUndefined()
    if (!error) throw new Error('no error')
    // Typed: these compile only because `error` is the contract's Problem.
    const type: typeof unauthorized | string = error.type
    const detail: string = error.detail
    expect(type).toBe(unauthorized)
    expect(detail).toEqual(expect.any(String))
    expect(error.status).toBe(401)
  })

  test('when the token function returns nothing, then the request goes without a token and answers 401', async () => {
    const calls: Request[] = []
    for (const token of [() => null, async () => undefined, () => '']) {
      const { error, response } = await sdk(token, calls).POST('/api/tasks', { body: { title: 'never stored' } })
      expect(response.status).toBe(401)
      expect(error?.type).toBe(unauthorized)
    }
    expect(calls.map((call) => call.headers.has('authorization'))).toEqual([false, false, false])
  })
})

describe('validation problems', () => {
  test('when a body breaks the contract, then error.errors lists each failure', async () => {
    const { token } = await user()
    const { data, error, response } = await sdk(token).POST('/api/tasks', {
      body: { title: '   ', description: 'x'.repeat(1001) },
    })
    expect(response.status).toBe(422)
    expect(data).toBeUndefined()
    expect(error?.type).toBe('urn:todo-api:problem:validation')
    expect(error?.errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ location: 'body', path: '/title' }),
        expect.objectContaining({ location: 'body', path: '/description' }),
      ]),
    )
  })

  test('when a query or path parameter breaks the contract, then error.errors names it', async () => {
    const { token } = await user()
    const api = sdk(token)
    const query = await api.GET('/api/tasks', { params: { query: { limit: 0 } } })
    expect(query.response.status).toBe(422)
    expect(query.error?.errors).toEqual([expect.objectContaining({ location: 'query', path: 'limit' })])

    const path = await api.GET('/api/tasks/{task_id}', { params: { path: { task_id: 0 } } })
    expect(path.response.status).toBe(422)
    expect(path.error?.errors).toEqual([expect.objectContaining({ location: 'path', path: 'task_id' })])
  })
})

describe('pages()', () => {
  /** 11 pending tasks matching "milk", plus others that the filter excludes. */
  async function seed(user_id: string) {
    const rows = Array.from({ length: 16 }, (_, i) => ({
      user_id,
      title: i < 13 ? `Milk ${String(i).padStart(2, '0')}` : `Bread ${i}`,
      completed: i === 3 || i === 7,
      created_at: new Date(Date.UTC(2021, 0, 1, 0, 0, i)),
      updated_at: new Date(Date.UTC(2021, 0, 1, 0, 0, i)),
    }))
    await server.sql`insert into tasks ${server.sql(rows)}`
  }

  const query = { status: 'pending', q: 'milk', sort: 'title', order: 'asc', limit: 3 } as const

  async function walk(pages: AsyncIterable<Task[]>) {
    const seen: Task[][] = []
    for await (const page of pages) seen.push(page)
    return seen
  }

  test('when a filtered list spans 4 pages in the token style, then pages() yields each page once and then stops', async () => {
    const { user_id, token } = await user()
    await seed(user_id)
    const calls: Request[] = []
    const api = sdk(token, calls)
    const all = (await api.GET('/api/tasks', { params: { query: { ...query, limit: 500 } } })).data ?? []
    expect(all.map((task) => task.title)).toEqual(
      ['00', '01', '02', '04', '05', '06', '08', '09', '10', '11', '12'].map((n) => `Milk ${n}`),
    )

    calls.length = 0
    const seen = await walk(api.pages('/api/tasks', { params: { query } }))
    expect(seen.map((page) => page.length)).toEqual([3, 3, 3, 2])
    expect(seen.flat()).toEqual(all)
    expect(calls).toHaveLength(4)
    for (const call of calls) {
      const params = new URL(call.url).searchParams
      expect(new URL(call.url).pathname).toBe('/api/tasks')
      expect(Object.fromEntries([...params].filter(([key]) => key !== 'cursor'))).toEqual({ ...query, limit: '3' })
    }
    expect(calls.map((call) => new URL(call.url).searchParams.has('cursor'))).toEqual([false, true, true, true])
  })

  test('when the filter repeats a parameter (two priorities, two tags), then every page keeps all the values', async () => {
    const { token } = await user()
    const api = sdk(token)
    const priorities = ['low', 'high', 'urgent', 'medium'] as const
    for (let i = 0; i < 12; i++) {
      const tags = i % 3 === 0 ? ['Work'] : ['work', 'Home']
      await api.POST('/api/tasks', { body: { title: `task ${i}`, priority: priorities[i % 4], tags } })
    }
    const filter: ListQuery = { priority: ['low', 'high'], tag: ['WORK', 'home'], limit: 2 }
    const all = (await api.GET('/api/tasks', { params: { query: { ...filter, limit: 500 } } })).data ?? []
    // low or high (i % 4 is 0 or 1) and tagged work and home (i % 3 is not 0), newest first.
    expect(all.map((t) => t.title)).toEqual(['task 8', 'task 5', 'task 4', 'task 1'])
    const seen = await walk(api.pages('/api/tasks', { params: { query: filter } }))
    expect(seen.map((page) => page.length)).toEqual([2, 2])
    expect(seen.flat()).toEqual(all)
  })

  test('when a filtered list spans 3 full pages in the path style, then pages() yields exactly those pages', async () => {
    const { user_id, token } = await user()
    await seed(user_id)
    const calls: Request[] = []
    const api = sdk(token, calls)
    const exact = { ...query, order: 'desc', q: 'MILK 0', status: 'all' } as const // Milk 00–09: 10 tasks
    const all = (await api.GET('/api/{user_id}/tasks', { params: { path: { user_id }, query: { ...exact, limit: 500 } } })).data ?? []
    expect(all).toHaveLength(10)

    calls.length = 0
    const nine = all.slice(0, 9).map((task) => task.id)
    await server.sql`delete from tasks where user_id = ${user_id} and id <> all(${nine})`
    const seen = await walk(api.pages('/api/{user_id}/tasks', { params: { path: { user_id }, query: exact } }))
    expect(seen.map((page) => page.length)).toEqual([3, 3, 3])
    expect(seen.flat().map((task) => task.id)).toEqual(nine)
    expect(calls).toHaveLength(3)
    expect(calls.every((call) => new URL(call.url).pathname === `/api/${user_id}/tasks`)).toBe(true)
  })

  test('when the user has no tasks, then pages() yields one empty page', async () => {
    const { token } = await user()
    expect(await walk(sdk(token).pages('/api/tasks'))).toEqual([[]])
  })

  test('when the first page fails (expired token), then pages() throws a TodoApiError with the problem', async () => {
    const user_id = newUser()
    const expired = await new SignJWT({ sub: user_id })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt(Math.floor(Date.now() / 1000) - 3600)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 1800)
      .sign(new TextEncoder().encode(secret))
    const seen: Task[][] = []
    const failure = await (async () => {
      for await (const page of sdk(expired).pages('/api/{user_id}/tasks', { params: { path: { user_id } } })) seen.push(page)
    })().catch((error: unknown) => error)
    expect(seen).toEqual([])
    expect(failure).toBeInstanceOf(TodoApiError)
    const { problem, message } = failure as TodoApiError
    expect(problem).toMatchObject({ type: unauthorized, status: 401 })
    expect(message).toBe(problem.detail)
  })

  test('when a later page fails (the token turns to garbage), then pages() yields the pages before and throws', async () => {
    const { user_id, token } = await user()
    await seed(user_id)
    let calls = 0
    const api = sdk(() => (++calls === 1 ? token : 'not.a.jwt'))
    const seen: Task[][] = []
    const failure = await (async () => {
      for await (const page of api.pages('/api/tasks', { params: { query } })) seen.push(page)
    })().catch((error: unknown) => error)
    expect(seen.map((page) => page.length)).toEqual([3])
    expect(failure).toBeInstanceOf(TodoApiError)
    expect((failure as TodoApiError).problem).toMatchObject({ type: unauthorized, status: 401, detail: expect.any(String) })
    expect((failure as TodoApiError).name).toBe('TodoApiError')
    expect(calls).toBe(2)
  })
})

describe('lost updates and retries', () => {
  test('etagOf(task) of a listed task is its ETag: If-Match with it writes, and once stale it is a typed 412', async () => {
    const { token } = await user()
    const api = sdk(token)
    await api.POST('/api/tasks', { body: { title: 'shared' } })
    const [task] = (await api.GET('/api/tasks')).data as Task[]
    const task_id = (task as Task).id
    const ifMatch = etagOf(task as Task)
    const first = await api.PATCH('/api/tasks/{task_id}', {
      params: { path: { task_id }, header: { 'If-Match': ifMatch } },
      body: { title: 'mine' },
    })
    expect(first.response.headers.get('etag')).toBe(etagOf(first.data as Task))
    const stale = await api.PATCH('/api/tasks/{task_id}', {
      params: { path: { task_id }, header: { 'If-Match': ifMatch } },
      body: { title: 'lost' },
    })
    expect(stale.response.status).toBe(412)
    expect(stale.error?.type).toBe('urn:todo-api:problem:precondition-failed')
  })

  test('with idempotentCreates, each create carries its own key, and a create whose answer is lost is sent again and stored once', async () => {
    const { user_id, token } = await user()
    const calls: Request[] = []
    let dropped = 0
    // The first answer never arrives (the connection "breaks" after the server has created the task).
    const flaky = async (request: Request) => {
      calls.push(request.clone())
      const response = await checkedFetch()(request)
      if (request.method === 'POST' && dropped++ === 0) throw new TypeError('fetch failed')
      return response
    }
    const api = createTodoClient({ baseUrl: server.url, token, fetch: flaky, idempotentCreates: true })
    const { data, response } = await api.POST('/api/tasks', { body: { title: 'exactly once' } })
    expect(response.status).toBe(201)
    expect(response.headers.get('idempotent-replayed')).toBe('true')
    const keys = calls.map((c) => c.headers.get('idempotency-key'))
    expect(keys).toHaveLength(2)
    expect(keys[0]).toMatch(/^[0-9a-f-]{32,36}$/)
    expect(keys[1]).toBe(keys[0])
    const rows = await server.sql`select id from tasks where user_id = ${user_id}`
    expect(rows.map((r) => r.id)).toEqual([data?.id])

    await api.POST('/api/tasks', { body: { title: 'exactly once' } })
    expect(calls.at(-1)?.headers.get('idempotency-key')).not.toBe(keys[0])
    expect((await server.sql`select count(*)::int as n from tasks where user_id = ${user_id}`)[0]?.n).toBe(2)
  })

  test('without idempotentCreates, no key is sent and nothing is retried', async () => {
    const { token } = await user()
    const calls: Request[] = []
    const { response } = await sdk(token, calls).POST('/api/tasks', { body: { title: 'plain' } })
    expect(response.status).toBe(201)
    expect(calls.map((c) => c.headers.get('idempotency-key'))).toEqual([null])
  })
})

describe('nextLink()', () => {
  test.each([
    ['a single next link', '</api/tasks?cursor=abc>; rel="next"', '/api/tasks?cursor=abc'],
    ['several links, next not first', '</p>; rel="prev", </api/tasks?cursor=2>; rel="next", </l>; rel="last"', '/api/tasks?cursor=2'],
    ['a rel list', '</b>; rel="prev next"', '/b'],
    ['a rel list, next first', '</b>; rel="next last"', '/b'],
    ['an unquoted rel', '<https://api.example.com/api/tasks?cursor=x>;rel=next', 'https://api.example.com/api/tasks?cursor=x'],
    ['other letter case', '</b>; REL="Next"', '/b'],
    ['other parameters first', '</b>; title="a, b; rel=prev"; rel="next"', '/b'],
    ['a comma and a semicolon in the URL', '</api/tasks?q=a,b;c&cursor=1>; rel="next"', '/api/tasks?q=a,b;c&cursor=1'],
  ])('when the Link header has %s, then the next target is found', (_, header, expected) => {
    expect(nextLink(header)).toBe(expected)
  })

  test.each([
    ['absent', null],
    ['empty', ''],
    ['only prev and last links', '</p>; rel="prev", </l>; rel="last"'],
    ['a link whose relation merely starts with next', '</b>; rel="nextpage"'],
    ['a link with next only in its title', '</b>; title="next"; rel="prev"'],
    ['a link whose second rel, which RFC 8288 ignores, is next', '</b>; rel="prev"; rel="next"'],
  ])('when the Link header is %s, then there is no next link', (_, header) => {
    expect(nextLink(header)).toBeUndefined()
  })
})
