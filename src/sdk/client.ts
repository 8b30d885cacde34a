/**
 * The typed client for todo-api, generated from contracts/openapi.yaml: every operation with the
 * contract's types, `{ data, error, response }` results (never throws on HTTP errors), `error`
 * typed as the contract's problem+json body. Runs unchanged in browsers, Node 18+ and edge runtimes.
 *
 * ```ts
 * const api = createTodoClient({ baseUrl: 'http://localhost:8000', token: () => getJwt() })
 * const { data, error } = await api.POST('/api/tasks', { body: { title: 'Buy milk' } })
 * for await (const page of api.pages('/api/tasks', { params: { query: { status: 'pending' } } })) render(page)
 * for await (const event of api.subscribe({ signal })) if (event.type === 'task.created') show(event.task)
 * ```
 */

import type { Client, ClientOptions, ClientPathsWithMethod, FetchResponse, MaybeOptionalInit, RequestBodyOption } from 'openapi-fetch'
import createClient from 'openapi-fetch'
import type { components, operations, paths } from '../../generated/api.js'

export { etagOf } from '../tasks/etag.js'
export type { components, operations, paths }
export type Task = components['schemas']['Task']
export type TaskCreate = components['schemas']['TaskCreate']
export type TaskReplace = components['schemas']['TaskReplace']
export type TaskPatch = components['schemas']['TaskPatch']
export type Problem = components['schemas']['Problem']
export type DeletedTask = components['schemas']['DeletedTask']
export type ListQuery = NonNullable<operations['listMyTasks']['parameters']['query']>

type EventName = components['schemas']['TaskEvent']['event']
/**
 * An event of `subscribe()`, typed from the contract's TaskEvent: the task as the REST API returns it
 * (`task.created`, `task.updated`, `reminder`), or the id of a deleted one. `reload`: what you show
 * may be stale (the events you missed are no longer kept, or the stream reconnected before it had an
 * event id): read the tasks again. `id` is what to pass as `lastEventId` to resume later.
 */
export type TaskEvent =
  | { type: Exclude<EventName, 'task.deleted' | 'reload'>; id: string; task: Task }
  | { type: 'task.deleted'; id: string; task_id: DeletedTask['id'] }
  | { type: 'reload'; id: string }

export interface SubscribeOptions {
  /** Ends the subscription: the iteration finishes (without an error) and the open request is aborted. */
  signal?: AbortSignal
  /** Resume after this event (an `id` from an earlier subscription): every later event is replayed first. */
  lastEventId?: string
  /** Use the path spelling `/api/{user_id}/tasks/events` (default: `/api/tasks/events`). */
  user_id?: string
  /** The stream is open (at first and after every reconnection): changes from now on arrive. */
  onOpen?: () => void
  /**
   * The stream is down and is tried again in `delayMs`. `error`: a `TodoApiError` for a 429 or 5xx
   * answer, the fetch's error when the network failed, undefined when the server ended the stream.
   */
  onRetry?: (delayMs: number, error: unknown) => void
  /** The longest wait between two attempts (default 30 s); a longer `Retry-After` is still honoured. */
  maxRetryDelayMs?: number
}

type MaybePromise<T> = T | Promise<T>

export interface TodoClientOptions extends Omit<ClientOptions, 'baseUrl'> {
  /** Where the API is served, e.g. `http://localhost:8000`; defaults to the page's own origin. */
  baseUrl?: string
  /** The Better Auth JWT, or a function returning it (called before every request, may be async). */
  token?: string | (() => MaybePromise<string | null | undefined>)
  /**
   * Makes creates retry-safe: every `POST` of a task gets an `Idempotency-Key` (unless it has one),
   * and a create whose connection fails, or that is answered 503 or "still running" (409), is sent
   * again with the same key, up to `retries` times: the API creates the task at most once.
   */
  idempotentCreates?: boolean | { retries?: number }
}

type ListPath = '/api/tasks' | '/api/{user_id}/tasks'
type ListInit<P extends ListPath> = P extends '/api/{user_id}/tasks'
  ? { params: { path: { user_id: string }; query?: ListQuery } }
  : { params?: { query?: ListQuery } }

type RequiredKeys<T> = { [K in keyof T]-?: Partial<Pick<T, K>> extends Pick<T, K> ? never : K }[keyof T]
/** `B` with every property the contract's body does not declare turned into `never`. */
type Exact<B, Declared> = B extends object ? B & { [K in Exclude<keyof B, keyof Declared>]: never } : B
type ExactBody<Init, Operation> = Init extends { body: infer B }
  ? Omit<Init, 'body'> & { body: Exact<B, NonNullable<RequestBodyOption<Operation>['body']>> }
  : Init
/**
 * openapi-fetch's method, except that a body with a property the contract does not declare does
 * not compile (openapi-fetch infers the body from the argument, so excess properties pass; the
 * server answers them with 422).
 */
type BodyMethod<M extends 'post' | 'put' | 'patch'> = <
  Path extends ClientPathsWithMethod<Client<paths>, M>,
  Init extends MaybeOptionalInit<paths[Path], M>,
>(
  url: Path,
  ...init: RequiredKeys<Init> extends never
    ? [(ExactBody<Init, paths[Path][M]> & { [key: string]: unknown })?]
    : [ExactBody<Init, paths[Path][M]> & { [key: string]: unknown }]
) => Promise<FetchResponse<paths[Path][M] & Record<string | number, unknown>, Init, `${string}/${string}`>>

export interface TodoClient extends Omit<Client<paths>, 'POST' | 'PUT' | 'PATCH'> {
  POST: BodyMethod<'post'>
  PUT: BodyMethod<'put'>
  PATCH: BodyMethod<'patch'>
  /**
   * Every page of a list, following `Link: rel="next"` until the last one. Stops with a
   * `TodoApiError` (carrying the problem) when a page fails.
   */
  pages<P extends ListPath>(path: P, ...init: P extends '/api/tasks' ? [ListInit<P>?] : [ListInit<P>]): AsyncIterableIterator<Task[]>
  /**
   * The user's task events as they happen (Server-Sent Events read with fetch, so that the token goes
   * in the Authorization header; a token function is called again for every connection). When the
   * stream ends or the network fails, it reconnects with `Last-Event-ID`, so no event is lost or
   * repeated: after the server's `retry` delay, doubling while attempts fail (at most
   * `maxRetryDelayMs`), after `Retry-After` for a 429 or 5xx. Stops with a `TodoApiError` when the
   * API refuses it otherwise (401: a new token is needed). Without `lastEventId`, it starts with the
   * first change after it opens (`onOpen`).
   */
  subscribe(options?: SubscribeOptions): AsyncIterableIterator<TaskEvent>
}

/** A failed page of `pages()`, or a refused `subscribe()`: the problem+json body the API answered with. */
export class TodoApiError extends Error {
  override name = 'TodoApiError'
  constructor(readonly problem: Problem) {
    // A proxy in front of the API may answer with something that is not a problem (text, HTML).
    super(problem?.detail ?? (typeof problem === 'string' ? problem : 'The request failed'))
  }
}

export function createTodoClient({ token, baseUrl, idempotentCreates, ...options }: TodoClientOptions = {}): TodoClient {
  const retries = typeof idempotentCreates === 'object' ? (idempotentCreates.retries ?? 2) : 2
  const fetch = options.fetch ?? ((request: Request) => globalThis.fetch(request))
  const client = createClient<paths>({ baseUrl: baseUrl ?? '', ...options, ...(idempotentCreates && { fetch: retrying(fetch, retries) }) })
  client.use({
    async onRequest({ request, schemaPath }) {
      const value = typeof token === 'function' ? await token() : token
      if (value) request.headers.set('Authorization', `Bearer ${value}`)
      if (idempotentCreates && request.method === 'POST' && /\/tasks$/.test(schemaPath) && !request.headers.has('Idempotency-Key')) {
        request.headers.set('Idempotency-Key', randomKey())
      }
      return request
    },
  })

  async function* pages<P extends ListPath>(path: P, init?: ListInit<P>): AsyncIterableIterator<Task[]> {
    let { data, error, response } = await client.GET(path as '/api/tasks', init as ListInit<'/api/tasks'>)
    for (;;) {
      if (error || !data) throw new TodoApiError(error as Problem)
      yield data
      const next = nextLink(response.headers.get('link'))
      if (!next) return
      // The next page is the Link's query as the server wrote it (every filter plus the cursor),
      // sent through the client so that its middleware (the token) applies.
      // (Only the query is read, so no base URL is needed: a custom fetch may answer with a Response without a url.)
      // A repeated parameter (priority, tag) stays a list of every value.
      const query: Record<string, string | string[]> = {}
      new URLSearchParams(next.split('#')[0]?.split('?')[1]).forEach((value, key) => {
        const seen = query[key]
        query[key] = seen === undefined ? value : [...(Array.isArray(seen) ? seen : [seen]), value]
      })
      const params = { ...(init?.params as object), query }
      ;({ data, error, response } = await client.GET(path as '/api/tasks', { params } as ListInit<'/api/tasks'>))
    }
  }

  async function* subscribe({
    signal,
    lastEventId = '',
    user_id,
    onOpen,
    onRetry,
    maxRetryDelayMs = 30_000,
  }: SubscribeOptions = {}): AsyncIterableIterator<TaskEvent> {
    const controller = new AbortController()
    const stop = () => controller.abort()
    signal?.addEventListener('abort', stop)
    if (signal?.aborted) stop()
    const cursor = { lastEventId, retry: 1000 }

    // One attempt: the open stream, or why there is none and when to try again (throws when trying again cannot help).
    const connect = async (): Promise<{ body?: ReadableStream<Uint8Array>; error?: unknown; retryAfter?: number }> => {
      const header = cursor.lastEventId ? { 'Last-Event-ID': cursor.lastEventId } : {}
      const request = client.GET((user_id === undefined ? '/api/tasks/events' : '/api/{user_id}/tasks/events') as '/api/tasks/events', {
        // Both spellings take the same options; only the path one has a path parameter.
        params: { header, ...(user_id !== undefined && { path: { user_id } }) } as { header: typeof header },
        headers: { Accept: 'text/event-stream' },
        parseAs: 'stream',
        signal: controller.signal,
      })
      let result: Awaited<typeof request>
      try {
        result = await request
      } catch (error) {
        return { error }
      }
      const { data, error, response } = result
      if (response.ok && data && response.headers.get('content-type')?.startsWith('text/event-stream')) return { body: data }
      if (response.ok) throw new Error(`The API answered ${response.status} ${response.headers.get('content-type')}, not an event stream`)
      const refused = new TodoApiError(error as Problem)
      if (response.status === 429 || response.status >= 500)
        return { error: refused, retryAfter: retryAfterMs(response.headers.get('retry-after')) }
      throw refused
    }

    try {
      let opened = false
      for (let failures = 0; !controller.signal.aborted; failures++) {
        const attempt = await connect()
        if (controller.signal.aborted) return
        let error = attempt.error
        if (attempt.body) {
          failures = 0
          onOpen?.()
          // Reconnected without an id (none had come yet): changes in between cannot be replayed.
          if (opened && !cursor.lastEventId) yield { type: 'reload', id: '' }
          opened = true
          const reader = attempt.body.getReader()
          const parse = eventStreamParser(cursor)
          try {
            for (;;) {
              let chunk: ReadableStreamReadResult<Uint8Array>
              try {
                chunk = await reader.read()
              } catch (broken) {
                error = broken
                break
              }
              if (chunk.done) break
              for (const { id, event, data } of parse(chunk.value)) {
                // An event the contract does not name (a newer server's) is skipped.
                if (Object.hasOwn(decoders, event)) yield decoders[event as EventName](id, data)
              }
            }
          } finally {
            reader.cancel().catch(() => {})
          }
          if (controller.signal.aborted) return
        }
        const backoff = Math.min(cursor.retry * 2 ** failures, maxRetryDelayMs)
        // Between half and all of the backoff, so that clients dropped together do not all return at once.
        const delay = attempt.retryAfter ?? backoff / 2 + (Math.random() * backoff) / 2
        onRetry?.(delay, error)
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer)
            controller.signal.removeEventListener('abort', done)
            resolve()
          }
          const timer = setTimeout(done, delay)
          controller.signal.addEventListener('abort', done)
        })
      }
    } finally {
      signal?.removeEventListener('abort', stop)
      controller.abort()
    }
  }

  return Object.assign(client, { pages, subscribe }) as TodoClient
}

const withTask =
  (type: Extract<TaskEvent, { task: Task }>['type']) =>
  (id: string, data: string): TaskEvent => ({ type, id, task: JSON.parse(data) })

// One decoder per event name of the contract (a Record misses none, so a new name fails the type check here).
const decoders: Record<EventName, (id: string, data: string) => TaskEvent> = {
  'task.created': withTask('task.created'),
  'task.updated': withTask('task.updated'),
  reminder: withTask('reminder'),
  'task.deleted': (id, data) => ({ type: 'task.deleted', id, task_id: (JSON.parse(data) as DeletedTask).id }),
  reload: (id) => ({ type: 'reload', id }),
}

/**
 * Reads `text/event-stream` bytes as the HTML standard does (§9.2.6), however the chunks are split
 * (a line, a CRLF or a UTF-8 character across two of them): lines end with CRLF, LF or CR; `data`
 * lines join with "\n"; comments and unknown fields are skipped; an event without data is not
 * dispatched. `id` and `retry` go into `cursor`, which outlives the connection.
 */
function eventStreamParser(cursor: { lastEventId: string; retry: number }) {
  const decoder = new TextDecoder()
  let rest = ''
  let afterCR = false
  let event = ''
  let data = ''
  let id = cursor.lastEventId
  return (chunk: Uint8Array): { id: string; event: string; data: string }[] => {
    const events: { id: string; event: string; data: string }[] = []
    let text = decoder.decode(chunk, { stream: true })
    if (text === '') return events
    // A CR that ended the previous chunk may be the first half of a CRLF.
    if (afterCR && text.startsWith('\n')) text = text.slice(1)
    afterCR = text.endsWith('\r')
    const lines = (rest + text).split(/\r\n|\r|\n/)
    rest = lines.pop() ?? ''
    for (const line of lines) {
      if (line === '') {
        cursor.lastEventId = id
        if (data !== '') events.push({ id, event: event || 'message', data: data.slice(0, -1) })
        data = event = ''
        continue
      }
      const colon = line.indexOf(':')
      if (colon === 0) continue
      const field = colon < 0 ? line : line.slice(0, colon)
      const value = colon < 0 ? '' : line.slice(colon + (line[colon + 1] === ' ' ? 2 : 1))
      if (field === 'event') event = value
      else if (field === 'data') data += `${value}\n`
      else if (field === 'id' && !value.includes('\0')) id = value
      else if (field === 'retry' && /^\d+$/.test(value)) cursor.retry = Number(value)
    }
    return events
  }
}

/** A Retry-After header (seconds, or an HTTP date) in milliseconds; undefined when absent or unreadable. */
function retryAfterMs(value: string | null): number | undefined {
  if (!value) return undefined
  const ms = /^\d+$/.test(value.trim()) ? Number(value) * 1000 : Date.parse(value) - Date.now()
  return Number.isNaN(ms) ? undefined : Math.max(0, ms)
}

/**
 * The target of `rel="next"` in a Link header (RFC 8288), if any. Commas and semicolons may occur
 * inside `<…>` and inside quoted parameter values, so the header is not simply split on commas.
 */
export function nextLink(header: string | null | undefined): string | undefined {
  const links = /<([^>]*)>((?:\s*;\s*[^\s;,=]+\s*(?:=\s*(?:"(?:[^"\\]|\\.)*"|[^;,]*))?)*)/g
  const params = /;\s*([^\s;,=]+)\s*(?:=\s*(?:"((?:[^"\\]|\\.)*)"|([^;,]*)))?/g
  for (const [, target, list = ''] of header?.matchAll(links) ?? []) {
    for (const [, name = '', quoted, bare] of list.matchAll(params)) {
      if (name.toLowerCase() !== 'rel') continue
      // Only the first rel counts (RFC 8288 §3.3); it is a space-separated list of relation types.
      if ((quoted ?? bare ?? '').toLowerCase().split(/\s+/).includes('next')) return target
      break
    }
  }
  return undefined
}

// A keyed create sent again after a failure that may have hidden its success (the connection broke,
// 503) or that said "try again" (409 idempotency-key-in-use); 200 ms, then 400 ms, … between tries.
function retrying(fetch: (request: Request) => Promise<Response>, retries: number) {
  return async (request: Request): Promise<Response> => {
    if (!request.headers.has('Idempotency-Key')) return fetch(request)
    for (let attempt = 0; ; attempt++) {
      const last = attempt >= retries
      try {
        const response = await fetch(last ? request : request.clone())
        if (last || !(await worthRetrying(response))) return response
      } catch (error) {
        if (last || request.signal?.aborted) throw error
      }
      await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** attempt))
    }
  }
}

async function worthRetrying(response: Response): Promise<boolean> {
  if (response.status === 503) return true
  if (response.status !== 409) return false
  const problem = (await response
    .clone()
    .json()
    .catch(() => undefined)) as Problem | undefined
  return problem?.type === 'urn:todo-api:problem:idempotency-key-in-use'
}

// crypto.randomUUID exists only in secure contexts (https, localhost); getRandomValues everywhere.
function randomKey(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID()
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('')
}
