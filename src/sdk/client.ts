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
import createClient, { type Client, type ClientOptions } from 'openapi-fetch'
import type { components, operations, paths } from '../../generated/api.js'

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
}

type ListPath = '/api/tasks' | '/api/{user_id}/tasks'
type ListInit<P extends ListPath> = P extends '/api/{user_id}/tasks'
  ? { params: { path: { user_id: string }; query?: ListQuery } }
  : { params?: { query?: ListQuery } }

export interface TodoClient extends Client<paths> {
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
    super(problem.detail)
  }
}

export function createTodoClient({ token, baseUrl, ...options }: TodoClientOptions = {}): TodoClient {
  const client = createClient<paths>({ baseUrl: baseUrl ?? '', ...options })
  client.use({
    async onRequest({ request }) {
      const value = typeof token === 'function' ? await token() : token
      if (value) request.headers.set('Authorization', `Bearer ${value}`)
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
      const query = Object.fromEntries(new URL(next, response.url).searchParams) as ListQuery
      const params = { ...(init?.params as object), query }
      ;({ data, error, response } = await client.GET(path as '/api/tasks', { params } as ListInit<'/api/tasks'>))
    }
  }

  return Object.assign(client, { pages }) as TodoClient
}

/** The target of `rel="next"` in a Link header (RFC 8288), if any. */
export function nextLink(header: string | null): string | undefined {
  for (const part of header?.split(',') ?? []) {
    const match = /^\s*<([^>]*)>\s*;(.*)$/.exec(part)
    if (match?.[2] && /(^|;)\s*rel\s*=\s*"?([^";]*\s)?next(\s[^";]*)?"?\s*(;|$)/i.test(match[2])) return match[1]
  }
  return undefined
}
