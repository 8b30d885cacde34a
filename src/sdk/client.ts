/**
 * The typed client for todo-api, generated from contracts/openapi.yaml: every operation with the
 * contract's types, `{ data, error, response }` results (never throws on HTTP errors), `error`
 * typed as the contract's problem+json body. Runs unchanged in browsers, Node 18+ and edge runtimes.
 *
 * ```ts
 * const api = createTodoClient({ baseUrl: 'http://localhost:8000', token: () => getJwt() })
 * const { data, error } = await api.POST('/api/tasks', { body: { title: 'Buy milk' } })
 * for await (const page of api.pages('/api/tasks', { params: { query: { status: 'pending' } } })) render(page)
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
export type ListQuery = NonNullable<operations['listMyTasks']['parameters']['query']>

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
}

/** A failed page of `pages()`: the problem+json body the API answered with. */
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

  return Object.assign(client, { pages }) as TodoClient
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
