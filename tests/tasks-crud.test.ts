import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { rawRequest, signIn, startServer, type TestServer } from './support/server.js'

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

describe('a user managing tasks, path style', () => {
  test('when a task is created, then it is listed, fetched, updated, toggled and deleted', async () => {
    const { user_id, api } = await signIn(server)
    const created = await api.POST('/api/{user_id}/tasks', { params: { path: { user_id } }, body: { title: 'Buy milk' } })
    expect(created.response.status).toBe(201)
    const task = created.data
    if (!task) throw new Error('no task created')
    expect(task).toMatchObject({ user_id, title: 'Buy milk', description: null, completed: false })
    expect(created.response.headers.get('location')).toBe(`/api/${user_id}/tasks/${task.id}`)

    const listed = await api.GET('/api/{user_id}/tasks', { params: { path: { user_id } } })
    expect(listed.data).toEqual([task])

    const path = { user_id, task_id: task.id }
    const patched = await api.PATCH('/api/{user_id}/tasks/{task_id}', { params: { path }, body: { description: '2 litres' } })
    expect(patched.data).toMatchObject({ title: 'Buy milk', description: '2 litres' })

    const toggled = await api.PATCH('/api/{user_id}/tasks/{task_id}/complete', { params: { path } })
    expect(toggled.data?.completed).toBe(true)

    const deleted = await api.DELETE('/api/{user_id}/tasks/{task_id}', { params: { path } })
    expect(deleted.response.status).toBe(204)
    const [row] = await server.sql`select count(*)::int as count from tasks where user_id = ${user_id}`
    expect(row?.count).toBe(0)
  })
})

describe('conditional requests', () => {
  const get = (path: string, headers: Record<string, string>) => rawRequest(server, path, headers)

  test('when a GET repeats with If-None-Match, then it is answered 200 with the body, never an undeclared 304', async () => {
    const { token, api } = await signIn(server)
    await api.POST('/api/tasks', { body: { title: 'cached?' } })
    const headers = { Authorization: `Bearer ${token}` }
    const first = await get('/api/tasks', headers)
    expect(first.etag).toBeUndefined()
    const conditions: Record<string, string>[] = [
      { 'If-None-Match': '*' },
      { 'If-None-Match': 'W/"c7-617kafCWyLGqdmc7qLeodTDY92o"' },
      { 'If-Modified-Since': new Date().toUTCString() },
    ]
    for (const condition of conditions) {
      const again = await get('/api/tasks', { ...headers, ...condition })
      expect(again.status).toBe(200)
      expect(again.body).toBe(first.body)
    }
  })
})
