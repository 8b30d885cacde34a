// Type-level tests of the SDK: not run by jest, checked by `npx tsc --noEmit` (which includes
// tests/). Every `@ts-expect-error` line must fail to compile — tsc reports an unused one, so each
// proves that the SDK rejects something the contract forbids. The positive lines prove that results
// carry the contract's types (and not `any`).
//
// What openapi-fetch itself lets through, and how the SDK stands:
// - An unknown property in a request body: openapi-fetch infers the init object from the argument,
//   so TypeScript's excess-property check never fires on `body` (POST, PUT, PATCH, …/complete all
//   compiled with `{ title: 'a', foo: 1 }`). createTodoClient's POST, PUT and PATCH add an exactness
//   check, so with the SDK it does not compile, inline or through a variable (the server would 422).
// - Unknown properties at the top level of the init object (`{ body, bodyy: … }`) still compile:
//   openapi-fetch deliberately adds `[key: string]: unknown` there for fetch options. So do unknown
//   keys in `params.path` (the serializer ignores them), and anything through `api.request(method, …)`.
// - Unknown query parameters do not compile (openapi-fetch checks `params.query`).
import type { components } from '../generated/api.js'
import { createTodoClient, type ListQuery, type Problem, type Task, type TaskCreate, type TodoClient } from '../src/sdk/client.js'

/** Compiles only when `value` is assignable to `T`. */
function expectType<T>(_value: T): void {}
/** Compiles only when `A` and `B` are the same type. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
function expectTrue<_T extends true>(): void {}

const user_id = 'u_1'
const task_id = 1

export async function typeTests(api: TodoClient = createTodoClient({ baseUrl: 'http://localhost:8000', token: async () => 't' })) {
  // --- bodies ---
  // @ts-expect-error a body without `title`
  await api.POST('/api/tasks', { body: { description: 'no title' } })
  // @ts-expect-error a body without `title`, path style
  await api.POST('/api/{user_id}/tasks', { params: { path: { user_id } }, body: {} })
  // @ts-expect-error PUT replaces: `title` is required
  await api.PUT('/api/tasks/{task_id}', { params: { path: { task_id } }, body: { completed: true } })
  // @ts-expect-error create needs a body at all
  await api.POST('/api/tasks', {})
  // @ts-expect-error an unknown body property on create
  await api.POST('/api/tasks', { body: { title: 'a', priority: 1 } })
  // @ts-expect-error an unknown body property on create, path style
  await api.POST('/api/{user_id}/tasks', { params: { path: { user_id } }, body: { title: 'a', due: '2026-01-01' } })
  const withExtra = { title: 'a', id: 7 }
  // @ts-expect-error an unknown body property through a variable (e.g. a whole Task sent back)
  await api.POST('/api/tasks', { body: withExtra })
  // @ts-expect-error an unknown body property on PUT
  await api.PUT('/api/tasks/{task_id}', { params: { path: { task_id } }, body: { title: 'a', user_id } })
  // @ts-expect-error an unknown body property on PATCH
  await api.PATCH('/api/{user_id}/tasks/{task_id}', { params: { path: { user_id, task_id } }, body: { done: true } })
  // @ts-expect-error an unknown body property on …/complete
  await api.PATCH('/api/tasks/{task_id}/complete', { params: { path: { task_id } }, body: { completed: true, at: 1 } })
  // @ts-expect-error `completed` is a boolean
  await api.POST('/api/tasks', { body: { title: 'a', completed: 'yes' } })
  // @ts-expect-error `completed` is a boolean, on …/complete too
  await api.PATCH('/api/tasks/{task_id}/complete', { params: { path: { task_id } }, body: { completed: 1 } })
  // @ts-expect-error `description` is a string or null
  await api.PATCH('/api/tasks/{task_id}', { params: { path: { task_id } }, body: { description: 5 } })
  // @ts-expect-error the SDK's TaskCreate type rejects an unknown property too
  const create: TaskCreate = { title: 'a', importance: 'high' }
  // @ts-expect-error `priority` is one of low, medium, high, urgent
  await api.POST('/api/tasks', { body: { title: 'a', priority: 'critical' } })
  // @ts-expect-error `tags` is an array of strings
  await api.POST('/api/tasks', { body: { title: 'a', tags: 'work' } })

  // --- path parameters ---
  // @ts-expect-error `task_id` is a number
  await api.GET('/api/tasks/{task_id}', { params: { path: { task_id: '1' } } })
  // @ts-expect-error `user_id` missing on a path-style call
  await api.GET('/api/{user_id}/tasks/{task_id}', { params: { path: { task_id } } })
  // @ts-expect-error `user_id` missing on a path-style list
  await api.GET('/api/{user_id}/tasks')
  // @ts-expect-error `task_id` missing
  await api.DELETE('/api/tasks/{task_id}', { params: { path: {} } })
  // @ts-expect-error `user_id` is a string
  await api.DELETE('/api/{user_id}/tasks/{task_id}', { params: { path: { user_id: 1, task_id } } })

  // --- paths and methods ---
  // @ts-expect-error an unknown path
  await api.GET('/api/todos')
  // @ts-expect-error an unknown path, with an init
  await api.GET('/api/tasks/{id}', { params: { path: { id: 1 } } })
  // @ts-expect-error PUT on the collection
  await api.PUT('/api/tasks', { body: { title: 'a' } })
  // @ts-expect-error a bulk PATCH sets only `completed`
  await api.PATCH('/api/tasks', { body: { title: 'everything' } })
  // @ts-expect-error a bulk DELETE needs `status`
  await api.DELETE('/api/{user_id}/tasks', { params: { path: { user_id } } })
  // @ts-expect-error POST on a task
  await api.POST('/api/tasks/{task_id}', { params: { path: { task_id } }, body: { title: 'a' } })
  // @ts-expect-error …/complete is PATCH only
  await api.PUT('/api/tasks/{task_id}/complete', { params: { path: { task_id } }, body: { completed: true } })

  // --- query parameters ---
  // @ts-expect-error `status` is all | pending | completed
  await api.GET('/api/tasks', { params: { query: { status: 'done' } } })
  // @ts-expect-error `limit` is a number
  await api.GET('/api/tasks', { params: { query: { limit: '5' } } })
  // @ts-expect-error `sort` is created_at | updated_at | title
  await api.GET('/api/{user_id}/tasks', { params: { path: { user_id }, query: { sort: 'id' } } })
  // @ts-expect-error `order` is asc | desc
  await api.GET('/api/tasks', { params: { query: { order: 'up' } } })
  // @ts-expect-error an unknown query parameter
  await api.GET('/api/tasks', { params: { query: { page: 2 } } })
  // @ts-expect-error pages() checks its query too
  api.pages('/api/tasks', { params: { query: { status: 'done' } } })
  // @ts-expect-error pages() on a path-style list needs `user_id`
  api.pages('/api/{user_id}/tasks')
  // @ts-expect-error pages() only walks lists
  api.pages('/api/tasks/{task_id}', { params: { path: { task_id } } })

  // --- the client's options ---
  // @ts-expect-error the token is a string or a function returning one
  createTodoClient({ token: 42 })
  // @ts-expect-error a token function returns a string (or nothing)
  createTodoClient({ token: () => ({ jwt: 't' }) })
  createTodoClient({ token: async () => null, baseUrl: 'https://api.example.com', credentials: 'include' })
  createTodoClient()

  // --- results carry the contract's types ---
  const created = await api.POST('/api/tasks', { body: { title: 'Buy milk', description: null, completed: false } })
  if (created.data) {
    expectType<Task>(created.data)
    expectTrue<Equal<typeof created.data, Task>>()
  } else {
    expectType<Problem>(created.error)
    expectTrue<Equal<typeof created.error, Problem>>()
    expectType<string>(created.error.detail)
    expectType<components['schemas']['ValidationError'][] | undefined>(created.error.errors)
    // @ts-expect-error `type` is one of the contract's problem types, not any string
    expectType<typeof created.error.type>('urn:todo-api:problem:nope')
  }
  // @ts-expect-error `data` is a Task, not any
  expectType<string>(created.data)

  const list = await api.GET('/api/{user_id}/tasks', { params: { path: { user_id }, query: { status: 'pending', limit: 5 } } })
  expectTrue<Equal<typeof list.data, Task[] | undefined>>()
  expectTrue<Equal<typeof list.error, Problem | undefined>>()

  const one = await api.GET('/api/tasks/{task_id}', { params: { path: { task_id } } })
  expectTrue<Equal<typeof one.data, Task | undefined>>()
  const put = await api.PUT('/api/{user_id}/tasks/{task_id}', { params: { path: { user_id, task_id } }, body: { title: 'b' } })
  expectTrue<Equal<typeof put.data, Task | undefined>>()
  const patch = await api.PATCH('/api/tasks/{task_id}', { params: { path: { task_id } }, body: { completed: true } })
  expectTrue<Equal<typeof patch.data, Task | undefined>>()
  const toggled = await api.PATCH('/api/tasks/{task_id}/complete', { params: { path: { task_id } } })
  expectTrue<Equal<typeof toggled.data, Task | undefined>>()
  const removed = await api.DELETE('/api/tasks/{task_id}', { params: { path: { task_id } } })
  expectTrue<Equal<typeof removed.error, Problem | undefined>>()
  const health = await api.GET('/health')
  expectTrue<Equal<typeof health.data, { status: 'ok' } | undefined>>()

  const query: ListQuery = { status: 'completed', sort: 'updated_at', order: 'asc', q: 'milk', limit: 500 }
  for await (const page of api.pages('/api/tasks', { params: { query } })) expectTrue<Equal<typeof page, Task[]>>()
  for await (const page of api.pages('/api/{user_id}/tasks', { params: { path: { user_id } } })) expectType<Task[]>(page)
  for await (const page of api.pages('/api/tasks')) expectType<Task[]>(page)

  return create
}
