import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { signIn, startServer, type TestServer } from './support/server.js'

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
