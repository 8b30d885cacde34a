// Keyset pagination: walking the `Link: <…>; rel="next"` URLs exactly as the server gives them
// yields every task once, in the order of one unpaginated request, for every sort and order, with
// ties in every key (and across page boundaries), and survives writes made while walking.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import type { components } from '../generated/api.js'
import { at, expectedOrder, insertTasks, type Row } from './support/seed.js'
import { signIn, startServer, type TestServer } from './support/server.js'

type Task = components['schemas']['Task']
let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

const titles = ['kiwi', 'Kiwi', 'apple', 'APPLE', 'mango', 'banana', 'Banana', 'fig', 'Needle', 'apple']

/**
 * 25 tasks with deliberate ties: created_at in runs of three, updated_at in a different order with
 * runs of up to three, titles repeated in other cases, every third completed, some matching "eed".
 */
function seed25(user_id: string): Promise<Row[]> {
  const rows = Array.from({ length: 25 }, (_, i) => ({
    title: titles[i % titles.length] as string,
    description: i % 4 === 0 ? 'seed (50% off_now*)' : null,
    completed: i % 3 === 0,
    created_at: at(Math.floor(i / 3)),
    updated_at: at(100 + ((i * 7) % 10)),
  }))
  return insertTasks(server.sql, user_id, rows)
}

const auth = (token: string) => ({ headers: { Authorization: `Bearer ${token}` } })

/** The URL of a `Link: <url>; rel="next"` header (null when there is none). */
function nextOf(response: Response): string | null {
  const link = response.headers.get('link')
  if (link === null) return null
  const match = /^<([^>]+)>; rel="next"$/.exec(link)
  if (!match) throw new Error(`unexpected Link header: ${link}`)
  return match[1] as string
}

async function page(token: string, url: string) {
  const response = await server.fetch(url, auth(token))
  expect(response.status).toBe(200)
  const body = (await response.json()) as Task[]
  expect(Array.isArray(body)).toBe(true)
  return { ids: body.map((t) => t.id), tasks: body, next: nextOf(response) }
}

/** Follows the Link URLs exactly as given until there is none; `between` runs after each page. */
async function walk(token: string, first: string, between?: (pageNumber: number, ids: number[]) => Promise<void>) {
  const pages: number[][] = []
  const links: string[] = []
  let url: string | null = first
  while (url !== null) {
    const current: Awaited<ReturnType<typeof page>> = await page(token, url)
    pages.push(current.ids)
    if (current.next !== null) links.push(current.next)
    url = current.next
    if (pages.length > 200) throw new Error('the walk does not end')
    await between?.(pages.length, current.ids)
  }
  return { ids: pages.flat(), pages, links }
}

// Strict RFC 3986 encoding (encodeURIComponent leaves !'()* bare), so that a request is accepted
// whatever it contains and only the server's Link URLs are under test here.
const strict = (value: string) => encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
const query = (params: Record<string, string | number>) =>
  Object.entries(params)
    .map(([k, v]) => `${k}=${strict(String(v))}`)
    .join('&')

const combinations = (['created_at', 'updated_at', 'title'] as const).flatMap((sort) =>
  (['asc', 'desc'] as const).map((order) => [sort, order] as const),
)

/** Checks a walk with limit=4 against one unpaginated request and the independent expectation. */
async function checkWalk(token: string, path: string, params: Record<string, string>, expected: number[], limit = 4) {
  const whole = await page(token, `${path}?${query({ ...params, limit: 500 })}`)
  expect(whole.next).toBeNull()
  expect(whole.ids).toEqual(expected)

  const { ids, pages, links } = await walk(token, `${path}?${query({ ...params, limit })}`)
  expect(ids).toEqual(whole.ids)
  expect(new Set(ids).size).toBe(ids.length)
  expect(pages.length).toBe(Math.max(1, Math.ceil(expected.length / limit)))
  expect(pages.slice(0, -1).every((p) => p.length === limit)).toBe(true)
  expect(links).toHaveLength(pages.length - 1)
  for (const link of links) {
    const url = new URL(link, server.url)
    expect(url.pathname).toBe(path)
    const kept = Object.fromEntries([...url.searchParams].filter(([k]) => k !== 'cursor'))
    expect(kept).toEqual({ ...params, limit: String(limit) })
    expect(url.searchParams.get('cursor')).toMatch(/^[A-Za-z0-9_-]+$/)
  }
}

describe('walking the Link header, every sort and order', () => {
  test.each(combinations)(
    'when sort=%s order=%s is walked 4 at a time, then every task appears once, in the unpaginated order',
    async (sort, order) => {
      const { user_id, token } = await signIn(server)
      const rows = await seed25(user_id)
      await checkWalk(token, '/api/tasks', { sort, order }, expectedOrder(rows, sort, order))
    },
  )

  test.each(combinations)(
    'when sort=%s order=%s is walked path style, then the Links stay path style and the walk is the same',
    async (sort, order) => {
      const { user_id, token } = await signIn(server)
      const rows = await seed25(user_id)
      await checkWalk(token, `/api/${user_id}/tasks`, { sort, order }, expectedOrder(rows, sort, order))
    },
  )

  test.each(combinations)(
    'when sort=%s order=%s is walked with status=pending and then status=completed, then each walk covers its tasks once',
    async (sort, order) => {
      const { user_id, token } = await signIn(server)
      const rows = await seed25(user_id)
      await checkWalk(
        token,
        '/api/tasks',
        { status: 'pending', sort, order },
        expectedOrder(
          rows.filter((r) => !r.completed),
          sort,
          order,
        ),
      )
      await checkWalk(
        token,
        '/api/tasks',
        { status: 'completed', sort, order },
        expectedOrder(
          rows.filter((r) => r.completed),
          sort,
          order,
        ),
      )
    },
  )

  test.each(combinations)(
    'when sort=%s order=%s is walked with a q filter, then the walk covers exactly the matching tasks once',
    async (sort, order) => {
      const { user_id, token } = await signIn(server)
      const rows = await seed25(user_id)
      const matching = rows.filter((r) => `${r.title} ${r.description ?? ''}`.toLowerCase().includes('eed'))
      expect(matching.length).toBe(8)
      await checkWalk(token, '/api/tasks', { q: 'EED', sort, order }, expectedOrder(matching, sort, order))
    },
  )

  test('when no sort or order is given, then the walk follows the defaults (created_at desc) and the Links add only a cursor', async () => {
    const { user_id, token } = await signIn(server)
    const rows = await seed25(user_id)
    await checkWalk(token, '/api/tasks', {}, expectedOrder(rows, 'created_at', 'desc'))
  })
})

describe('the Link header', () => {
  test('when the query has every parameter, with characters that need encoding, then the Link keeps each of them and adds the cursor', async () => {
    const { user_id, token } = await signIn(server)
    const rows = await seed25(user_id)
    const params = { status: 'pending', sort: 'title', order: 'asc', q: '(50% OFF_NOW*)' }
    const expected = expectedOrder(
      rows.filter((r) => !r.completed && (r.description ?? '').includes('(50% off_now*)')),
      'title',
      'asc',
    )
    expect(expected).toHaveLength(4)
    const first = await page(token, `/api/tasks?${query({ ...params, limit: 3 })}`)
    const link = new URL(first.next as string, server.url)
    expect(Object.fromEntries(link.searchParams)).toEqual({ ...params, limit: '3', cursor: expect.any(String) })
    const second = await page(token, first.next as string)
    expect([...first.ids, ...second.ids]).toEqual(expected)
    await checkWalk(token, '/api/tasks', params, expected, 1)
  })

  test('when the remaining tasks exactly fill the last page, then that page has no Link', async () => {
    const { user_id, token } = await signIn(server)
    await server.sql`insert into tasks ${server.sql(Array.from({ length: 8 }, (_, i) => ({ user_id, title: `t${i}` })))}`
    const { pages } = await walk(token, '/api/tasks?limit=4')
    expect(pages.map((p) => p.length)).toEqual([4, 4])
  })

  test('when a user has 600 tasks and asks for limit=500, then the page has 500 and a Link to the last 100', async () => {
    const { user_id, token } = await signIn(server)
    const rows = await server.sql<Row[]>`
      insert into tasks ${server.sql(Array.from({ length: 600 }, (_, i) => ({ user_id, title: `t${i}`, created_at: at(Math.floor(i / 7)) })))}
      returning id, title, description, completed, created_at, updated_at
    `
    const expected = expectedOrder(rows, 'created_at', 'desc')
    const first = await page(token, '/api/tasks?limit=500')
    expect(first.ids).toEqual(expected.slice(0, 500))
    expect(first.next).not.toBeNull()
    const second = await page(token, first.next as string)
    expect(second.ids).toEqual(expected.slice(500))
    expect(second.next).toBeNull()
  })

  test('when a cursor made for one sort is sent with another sort, then it is rejected with 422', async () => {
    const { user_id, token } = await signIn(server)
    await seed25(user_id)
    const first = await page(token, '/api/tasks?sort=title&limit=4')
    const link = new URL(first.next as string, server.url)
    link.searchParams.set('sort', 'created_at')
    const response = await server.fetch(`${link.pathname}${link.search}`, auth(token))
    expect(response.status).toBe(422)
    expect((await response.json()).errors).toEqual([expect.objectContaining({ location: 'query', path: 'cursor' })])
  })
})

describe('writes while walking', () => {
  test('when a task is created while walking created_at desc, then the walk has no duplicate and misses no earlier task', async () => {
    const { user_id, token, api } = await signIn(server)
    const rows = await seed25(user_id)
    let created: number | undefined
    const { ids } = await walk(token, '/api/tasks?limit=4', async (n) => {
      if (n === 2) created = (await api.POST('/api/tasks', { body: { title: 'newest' } })).data?.id
    })
    expect(created).toBeDefined()
    // Newer than the cursor in descending order: it belongs before the pages already read.
    expect(ids).toEqual(expectedOrder(rows, 'created_at', 'desc'))
    const fresh = await page(token, '/api/tasks?limit=1')
    expect(fresh.ids).toEqual([created])
  })

  test('when a task is created while walking created_at asc, then it appears once, at the end', async () => {
    const { user_id, token, api } = await signIn(server)
    const rows = await seed25(user_id)
    let created: number | undefined
    const { ids } = await walk(token, '/api/tasks?limit=4&order=asc', async (n) => {
      if (n === 2) created = (await api.POST('/api/tasks', { body: { title: 'newest' } })).data?.id
    })
    expect(ids).toEqual([...expectedOrder(rows, 'created_at', 'asc'), created])
  })

  test.each(combinations)(
    'when sort=%s order=%s and tasks of earlier pages (including the cursor task itself) are deleted, then the next page is still the right one',
    async (sort, order) => {
      const { user_id, token, api } = await signIn(server)
      const rows = await seed25(user_id)
      const expected = expectedOrder(rows, sort, order)
      const first = await page(token, `/api/tasks?${query({ sort, order, limit: 4 })}`)
      const second = await page(token, first.next as string)
      expect([...first.ids, ...second.ids]).toEqual(expected.slice(0, 8))
      // One task from page 1 and the last task of page 2, which the cursor in second.next points at.
      for (const task_id of [first.ids[1], second.ids[3]] as number[]) {
        const deleted = await api.DELETE('/api/tasks/{task_id}', { params: { path: { task_id } } })
        expect(deleted.response.status).toBe(204)
      }
      const third = await page(token, second.next as string)
      expect(third.ids).toEqual(expected.slice(8, 12))
      const rest = await walk(token, third.next as string)
      expect([...third.ids, ...rest.ids]).toEqual(expected.slice(8))
    },
  )
})
