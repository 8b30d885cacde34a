// User isolation: another user's task is invisible (404, exactly like a task that does not exist),
// through every endpoint in both spellings; naming another user in the path is 403; and nothing
// another user tries changes a byte of the owner's rows.
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import type { components } from '../generated/api.js'
import { signIn, startServer, type TestServer, tokenFor } from './support/server.js'

type Task = components['schemas']['Task']

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

interface User {
  user_id: string
  token: string
}

/** Every column of every row of the user, as PostgreSQL prints it (full timestamp precision). */
async function snapshot(user_id: string): Promise<string[]> {
  const rows = await server.sql<{ row: string }[]>`select t::text as row from tasks t where user_id = ${user_id} order by id`
  return rows.map((r) => r.row)
}

function send(user: User, method: string, path: string, body?: unknown) {
  const headers: Record<string, string> = { Authorization: `Bearer ${user.token}` }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  return server.fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
}

async function create(user: User, body: { title: string; description?: string | null; completed?: boolean }): Promise<Task> {
  const response = await send(user, 'POST', '/api/tasks', body)
  expect(response.status).toBe(201)
  return (await response.json()) as Task
}

/** A owns three tasks (one completed, one with a description); B owns two. */
async function twoUsers() {
  const a = await signIn(server)
  const b = await signIn(server)
  const aTasks = [
    await create(a, { title: 'A secret plan', description: 'only for A' }),
    await create(a, { title: 'A done thing', completed: true }),
    await create(a, { title: 'A shared word: zebra' }),
  ]
  const bTasks = [await create(b, { title: 'B errand' }), await create(b, { title: 'B chore: zebra', completed: true })]
  // An id that surely belongs to nobody: B's own task, deleted.
  const gone = await create(b, { title: 'B gone' })
  expect((await send(b, 'DELETE', `/api/tasks/${gone.id}`)).status).toBe(204)
  return { a, b, aTasks, bTasks, goneId: gone.id }
}

// Every operation on one task, with a body that would change it if it were allowed through.
const taskOperations = [
  { name: 'GET', method: 'GET', suffix: '', body: undefined },
  { name: 'PUT', method: 'PUT', suffix: '', body: { title: 'hijacked', description: 'by B', completed: true } },
  { name: 'PATCH title', method: 'PATCH', suffix: '', body: { title: 'hijacked' } },
  { name: 'PATCH description', method: 'PATCH', suffix: '', body: { description: null } },
  { name: 'PATCH completed', method: 'PATCH', suffix: '', body: { completed: true } },
  { name: 'PATCH …/complete (toggle)', method: 'PATCH', suffix: '/complete', body: undefined },
  { name: 'PATCH …/complete {completed: false}', method: 'PATCH', suffix: '/complete', body: { completed: false } },
  { name: 'DELETE', method: 'DELETE', suffix: '', body: undefined },
] as const

const spellings = [
  { name: 'token style', base: (_user_id: string) => '/api/tasks' },
  { name: 'path style', base: (user_id: string) => `/api/${encodeURIComponent(user_id)}/tasks` },
] as const

/** A problem body without what legitimately differs between two requests (request id, the task id). */
async function problemOf(response: Response, task_id?: number) {
  const { request_id, detail, ...problem } = (await response.json()) as Record<string, unknown>
  expect(typeof request_id).toBe('string')
  // Only the detail names the task (replacing the id's digits anywhere else could hit the status).
  const named = task_id === undefined ? detail : String(detail).replace(new RegExp(`\\b${task_id}\\b`, 'g'), '{task_id}')
  return { ...problem, detail: named }
}

describe("another user's task is 404, like a task that does not exist", () => {
  test.each(spellings.flatMap((s) => taskOperations.map((o) => [o.name, s.name, o, s] as const)))(
    "when B sends %s for A's task id %s, then it is 404, the same answer as for an id that exists for nobody",
    async (_, __, operation, spelling) => {
      const { a, b, aTasks, goneId } = await twoUsers()
      const before = await snapshot(a.user_id)
      for (const task of aTasks) {
        const response = await send(b, operation.method, `${spelling.base(b.user_id)}/${task.id}${operation.suffix}`, operation.body)
        expect(response.status).toBe(404)
        expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/)
        const nobody = await send(b, operation.method, `${spelling.base(b.user_id)}/${goneId}${operation.suffix}`, operation.body)
        expect(nobody.status).toBe(404)
        expect(await problemOf(response, task.id)).toEqual(await problemOf(nobody, goneId))
      }
      expect(await snapshot(a.user_id)).toEqual(before)
    },
  )
})

describe('naming another user in the path is 403, whatever the task', () => {
  const allOperations = [
    { name: 'list', method: 'GET', task: false, suffix: '', body: undefined },
    { name: 'create', method: 'POST', task: false, suffix: '', body: { title: 'planted by B' } },
    ...taskOperations.map((o) => ({ ...o, task: true })),
  ] as const

  test.each(allOperations.map((o) => [o.name, o] as const))(
    "when B sends %s under /api/{A's id}/tasks, then it is 403 and reveals nothing about A's tasks",
    async (_, operation) => {
      const { a, b, aTasks, bTasks, goneId } = await twoUsers()
      const before = await snapshot(a.user_id)
      const bBefore = await snapshot(b.user_id)
      const targets = operation.task ? [aTasks[0]?.id, aTasks[1]?.id, bTasks[0]?.id, goneId] : [undefined]
      const answers = []
      for (const task_id of targets) {
        const path = `/api/${encodeURIComponent(a.user_id)}/tasks${task_id === undefined ? '' : `/${task_id}`}${operation.suffix}`
        const response = await send(b, operation.method, path, operation.body)
        expect(response.status).toBe(403)
        answers.push(await problemOf(response))
      }
      // The same answer for A's tasks, B's task and a task of nobody.
      for (const answer of answers) expect(answer).toEqual(answers[0])
      expect(JSON.stringify(answers[0])).not.toMatch(/A secret|A done|zebra/)
      expect(await snapshot(a.user_id)).toEqual(before)
      expect(await snapshot(b.user_id)).toEqual(bBefore)
    },
  )
})

describe('lists show only their own tasks', () => {
  test.each(spellings.map((s) => [s.name, s] as const))(
    "when B lists %s with any filter, sort or search, then only B's tasks come back",
    async (_, spelling) => {
      const { a, b, bTasks } = await twoUsers()
      const bIds = bTasks.map((t) => t.id).sort((x, y) => x - y)
      const queries = [
        '',
        '?status=pending',
        '?status=completed',
        '?sort=title&order=asc',
        '?sort=updated_at&order=asc',
        '?q=zebra',
        '?q=A%20secret',
        '?q=a&limit=500',
      ]
      for (const query of queries) {
        const response = await send(b, 'GET', `${spelling.base(b.user_id)}${query}`)
        expect(response.status).toBe(200)
        const tasks = (await response.json()) as Task[]
        expect(tasks.every((t) => t.user_id === b.user_id)).toBe(true)
        expect(tasks.every((t) => bIds.includes(t.id))).toBe(true)
      }
      const everything = (await (await send(b, 'GET', `${spelling.base(b.user_id)}?limit=500`)).json()) as Task[]
      expect(everything.map((t) => t.id).sort((x, y) => x - y)).toEqual(bIds)
      const secret = (await (await send(b, 'GET', `${spelling.base(b.user_id)}?q=secret`)).json()) as Task[]
      expect(secret).toEqual([])
      // A, for comparison, sees A's three.
      const aList = (await (await send(a, 'GET', spelling.base(a.user_id))).json()) as Task[]
      expect(aList.map((t) => t.user_id)).toEqual([a.user_id, a.user_id, a.user_id])
    },
  )

  test("when B follows A's Link URL, then token style it is B's own list and path style it is 403", async () => {
    const { a, b, bTasks } = await twoUsers()
    for (const spelling of spellings) {
      const first = await send(a, 'GET', `${spelling.base(a.user_id)}?limit=1`)
      const link = /^<([^>]+)>; rel="next"$/.exec(first.headers.get('link') ?? '')?.[1]
      if (!link) throw new Error('A has three tasks, so a limit=1 page has a Link')
      const followed = await send(b, 'GET', link)
      if (spelling.name === 'path style') {
        expect(followed.status).toBe(403)
      } else {
        expect(followed.status).toBe(200)
        const tasks = (await followed.json()) as Task[]
        expect(tasks.every((t) => t.user_id === b.user_id && bTasks.some((own) => own.id === t.id))).toBe(true)
      }
    }
  })
})

describe("creating never writes into another user's tasks", () => {
  test.each(spellings.map((s) => [s.name, s] as const))(
    "when B creates a task %s, then it is B's and A's rows are untouched",
    async (_, spelling) => {
      const { a, b } = await twoUsers()
      const before = await snapshot(a.user_id)
      const response = await send(b, 'POST', spelling.base(b.user_id), { title: 'mine' })
      expect(response.status).toBe(201)
      const task = (await response.json()) as Task
      expect(task.user_id).toBe(b.user_id)
      const [row] = await server.sql`select user_id from tasks where id = ${task.id}`
      expect(row?.user_id).toBe(b.user_id)
      expect(await snapshot(a.user_id)).toEqual(before)
    },
  )

  test.each(spellings.map((s) => [s.name, s] as const))(
    "when B's create body names A as user_id (%s), then it is rejected with 422 and nothing is created",
    async (_, spelling) => {
      const { a, b } = await twoUsers()
      const [before, bBefore] = [await snapshot(a.user_id), await snapshot(b.user_id)]
      const response = await send(b, 'POST', spelling.base(b.user_id), { title: 'planted', user_id: a.user_id })
      expect(response.status).toBe(422)
      expect(await snapshot(a.user_id)).toEqual(before)
      expect(await snapshot(b.user_id)).toEqual(bBefore)
    },
  )

  test.each(spellings.map((s) => [s.name, s] as const))(
    "when B's PUT or PATCH body of B's own task names A as user_id (%s), then it is rejected with 422 and the task stays B's",
    async (_, spelling) => {
      const { a, b, bTasks } = await twoUsers()
      const own = bTasks[0] as Task
      const bBefore = await snapshot(b.user_id)
      for (const [method, body] of [
        ['PUT', { title: 'moved', user_id: a.user_id }],
        ['PATCH', { user_id: a.user_id }],
      ] as const) {
        const response = await send(b, method, `${spelling.base(b.user_id)}/${own.id}`, body)
        expect(response.status).toBe(422)
      }
      expect(await snapshot(b.user_id)).toEqual(bBefore)
      expect(await snapshot(a.user_id)).toHaveLength(3)
    },
  )
})

test("when B has tried every operation on A's tasks in both spellings, then A's rows are byte-identical and A still manages them", async () => {
  const { a, b, aTasks, bTasks } = await twoUsers()
  const before = await snapshot(a.user_id)
  expect(before).toHaveLength(3)
  for (const spelling of spellings) {
    for (const task of aTasks) {
      for (const operation of taskOperations) {
        const own = await send(b, operation.method, `${spelling.base(b.user_id)}/${task.id}${operation.suffix}`, operation.body)
        expect(own.status).toBe(404)
        const named = await send(b, operation.method, `${spelling.base(a.user_id)}/${task.id}${operation.suffix}`, operation.body)
        expect(named.status).toBe(spelling.name === 'path style' ? 403 : 404)
      }
    }
    expect((await send(b, 'GET', spelling.base(a.user_id))).status).toBe(spelling.name === 'path style' ? 403 : 200)
    expect((await send(b, 'POST', spelling.base(a.user_id), { title: 'planted' })).status).toBe(spelling.name === 'path style' ? 403 : 201)
  }
  expect(await snapshot(a.user_id)).toEqual(before)
  // A's own requests still work on every task, and show the tasks unchanged.
  const listed = (await (await send(a, 'GET', '/api/tasks?sort=created_at&order=asc')).json()) as Task[]
  expect(listed).toEqual(aTasks)
  for (const task of aTasks) {
    const got = await send(a, 'GET', `/api/${encodeURIComponent(a.user_id)}/tasks/${task.id}`)
    expect(await got.json()).toEqual(task)
  }
  // B's own tasks are B's to change.
  expect((await send(b, 'PATCH', `/api/tasks/${bTasks[0]?.id}/complete`)).status).toBe(200)
})

test('when user ids differ only by case or by percent-encoding, then each user reaches only their own tasks', async () => {
  const id = randomUUID()
  const users: User[] = []
  for (const user_id of [`user ${id}`, `USER ${id.toUpperCase()}`, `user%20${id}`, `user+${id}`])
    users.push({ user_id, token: await tokenFor(user_id) })
  const created = new Map<string, number>()
  for (const user of users) {
    const response = await send(user, 'POST', `/api/${encodeURIComponent(user.user_id)}/tasks`, { title: `task of ${user.user_id}` })
    expect(response.status).toBe(201)
    const task = (await response.json()) as Task
    expect(task.user_id).toBe(user.user_id)
    created.set(user.user_id, task.id)
  }
  for (const user of users) {
    const own = await send(user, 'GET', `/api/${encodeURIComponent(user.user_id)}/tasks`)
    expect(own.status).toBe(200)
    expect(((await own.json()) as Task[]).map((t) => t.id)).toEqual([created.get(user.user_id)])
    for (const other of users.filter((u) => u !== user)) {
      expect((await send(user, 'GET', `/api/${encodeURIComponent(other.user_id)}/tasks`)).status).toBe(403)
      expect((await send(user, 'GET', `/api/tasks/${created.get(other.user_id)}`)).status).toBe(404)
    }
  }
})
