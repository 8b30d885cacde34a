// Shared by the bad-input tests (bad-input-body, bad-input-params, content-type): a user of one's
// own with a seeded task, requests in both URL spellings, and the assertions every rejection
// shares: the status, the problem type, the `errors` of a 422, no leak of internals, and a
// database left exactly as it was.
import { expect } from '@jest/globals'
import type { components } from '../generated/api.js'
import { signIn, type TestServer } from './support/server.js'

export type Task = components['schemas']['Task']
type Problem = components['schemas']['Problem']
type Location = components['schemas']['ValidationError']['location']

export type Style = 'path style' | 'token style'
export const styles: Style[] = ['path style', 'token style']

/** `/api/{user_id}/tasks…` or `/api/tasks…`, followed by `rest`. */
export function tasksUrl(style: Style, user_id: string, rest = ''): string {
  return style === 'path style' ? `/api/${encodeURIComponent(user_id)}/tasks${rest}` : `/api/tasks${rest}`
}

/** The four operations that take a JSON body, each with a body it accepts. */
export interface Write {
  name: 'create' | 'replace' | 'update' | 'complete'
  method: 'POST' | 'PUT' | 'PATCH'
  rest(task_id: number): string
  valid: Record<string, unknown>
}
export const create: Write = { name: 'create', method: 'POST', rest: () => '', valid: { title: 'fine' } }
export const replace: Write = { name: 'replace', method: 'PUT', rest: (id) => `/${id}`, valid: { title: 'fine' } }
export const update: Write = { name: 'update', method: 'PATCH', rest: (id) => `/${id}`, valid: { title: 'fine' } }
export const complete: Write = { name: 'complete', method: 'PATCH', rest: (id) => `/${id}/complete`, valid: { completed: true } }
export const writes = [create, replace, update, complete]
/** The writes whose body has title, description and completed. */
export const taskWrites = [create, replace, update]

/** Every combination of the writes given and both URL spellings, named for test.each. */
export function targets(list: Write[] = writes): [string, Write, Style][] {
  return list.flatMap((w) => styles.map((s): [string, Write, Style] => [`${w.name} (${w.method}), ${s}`, w, s]))
}

/** Crosses a table of cases with targets: one test per pair. */
export function cross<C>(cases: [string, C][], list: Write[] = writes): [string, C, Write, Style][] {
  return cases.flatMap(([name, value]) =>
    targets(list).map(([target, w, s]): [string, C, Write, Style] => [`${name} → ${target}`, value, w, s]),
  )
}

export interface Sandbox {
  user_id: string
  token: string
  /** A task of the user's, with a description, not completed. */
  task: Task
  /** The user's rows as PostgreSQL renders them (every column, every digit of the timestamps), by id. */
  rows(): Promise<string[]>
}

/** A fresh user (tests never share users) with one task. */
export async function sandbox(server: TestServer): Promise<Sandbox> {
  const { user_id, token, api } = await signIn(server)
  const { data: task } = await api.POST('/api/tasks', { body: { title: 'seed', description: 'kept', completed: false } })
  if (!task) throw new Error('could not seed a task')
  return {
    user_id,
    token,
    task,
    rows: async () => {
      const rows = await server.sql<
        { json: string }[]
      >`select row_to_json(t)::text as json from tasks t where user_id = ${user_id} order by id`
      return rows.map((r) => r.json)
    },
  }
}

export interface Sent {
  status: number
  headers: Headers
  /** The parsed JSON body, or the text when it is not JSON (undefined when empty). */
  body: unknown
}

export interface SendOptions {
  method?: string
  token?: string
  /** A string is sent as is; anything else is JSON.stringify'd. */
  body?: unknown
  /** The Content-Type; application/json when a body is given, none otherwise; null to send none. */
  type?: string | null
  headers?: Record<string, string>
}

/** A raw request through the server's checked fetch; every error answer is checked for leaks. */
export async function send(server: TestServer, path: string, options: SendOptions = {}): Promise<Sent> {
  const { method = 'GET', token, body, headers = {} } = options
  const payload = body === undefined || typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body)
  const type = options.type === undefined ? (payload === undefined ? undefined : 'application/json') : options.type
  const all: Record<string, string> = { ...headers }
  if (token) all.Authorization = `Bearer ${token}`
  if (type) all['Content-Type'] = type
  const response = await server.fetch(path, { method, headers: all, body: payload as BodyInit | undefined })
  const text = await response.text()
  let parsed: unknown = text === '' ? undefined : text
  if (/json/.test(response.headers.get('content-type') ?? '')) parsed = JSON.parse(text)
  if (response.status >= 400) expectNoLeak(text)
  return { status: response.status, headers: response.headers, body: parsed }
}

const problemKeys = ['type', 'title', 'status', 'detail', 'request_id', 'errors']

// What an error body must never show: a stack, a source file or directory, SQL or a driver's error.
const leaks: [string, RegExp][] = [
  ['a stack frame', /\n\s*at\s|\bat\s+[\w$.<>[\] ]+\s\(|\bat\s+(?:file|node):/],
  ['a source location', /\.(?:[cm]?[jt]s|sql|c):\d+/],
  ['a file path', /(?:^|[\s"'(=])\/(?:work|home|root|usr|opt|app|tmp|var|src|dist|node_modules)\/|node_modules|file:\/\//],
  ['an error class', /\b[A-Z]\w*Error\b/],
  ['SQL', /\b(?:select\s.+\sfrom|insert\s+into|update\s+\w+\s+set|delete\s+from)\b/i],
  ['a database error', /postgres|\bpg_|\brelation\s+"|violates|constraint|syntax error at|duplicate key|SQLSTATE|22P02/i],
]

/** No stack trace, file path or SQL in an error body; a problem body has only the problem's members. */
export function expectNoLeak(text: string): void {
  for (const [what, pattern] of leaks) {
    if (pattern.test(text)) throw new Error(`an error body shows ${what}:\n${text.slice(0, 1000)}`)
  }
  try {
    const body = JSON.parse(text) as Record<string, unknown>
    expect(Object.keys(body).filter((k) => !problemKeys.includes(k))).toEqual([])
  } catch (error) {
    if (error instanceof SyntaxError) throw new Error(`an error body is not JSON:\n${text.slice(0, 500)}`)
    throw error
  }
}

const codes: Record<number, string> = {
  400: 'malformed-json',
  403: 'forbidden',
  404: 'not-found',
  405: 'method-not-allowed',
  413: 'payload-too-large',
  415: 'unsupported-media-type',
  422: 'validation',
}

/** `location path` of each entry of a 422's errors, e.g. `body /title`, `query limit`, `path task_id`. */
export type Where = `${Location} ${string}` | Location

/**
 * The answer is the problem of `status`; for a 422, `errors` names exactly the places given
 * (each place at least once, no other place), each with a message ('any': at least one place).
 */
export function expectProblem(sent: Sent, status: number, where: Where[] | 'any' = []): Problem {
  const problem = sent.body as Problem
  expect({ status: sent.status, type: problem?.type }).toEqual({ status, type: `urn:todo-api:problem:${codes[status]}` })
  expect(sent.headers.get('content-type')).toMatch(/^application\/problem\+json/)
  expect(problem.status).toBe(status)
  expect(problem.detail).toEqual(expect.any(String))
  if (status !== 422) {
    expect(problem.errors).toBeUndefined()
    return problem
  }
  const errors = problem.errors ?? []
  for (const e of errors) expect(e.message).toMatch(/\S/)
  const places = [...new Set(errors.map((e) => (e.path === '' ? e.location : `${e.location} ${e.path}`)))].sort()
  if (where === 'any') expect(places.length).toBeGreaterThan(0)
  else expect(places).toEqual([...new Set(where)].sort())
  return problem
}

/** Sends a request that must be refused with `status` (and, for 422, `where`), and checks the user's rows did not change. */
export async function expectRefused(
  server: TestServer,
  box: Sandbox,
  path: string,
  options: SendOptions,
  status: number,
  where: Where[] = [],
): Promise<Problem> {
  const before = await box.rows()
  const sent = await send(server, path, { token: box.token, ...options })
  const problem = expectProblem(sent, status, where)
  expect(await box.rows()).toEqual(before)
  return problem
}

/** The URL of a write on the sandbox's task. */
export function urlOf(box: Sandbox, w: Write, style: Style): string {
  return tasksUrl(style, box.user_id, w.rest(box.task.id))
}

/** The success status of a write. */
export const success = (w: Write) => (w.name === 'create' ? 201 : 200)
