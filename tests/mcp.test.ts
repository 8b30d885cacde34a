// Issue 9: the MCP server at POST /mcp, through the SDK's own client. Its tools come from the contract
// (x-mcp-tool), a call is checked by the contract's rules and runs the operation's handler for the
// token's user, and what the caller can correct comes back as a tool error naming each argument.
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import type { components } from '../generated/api.js'
import { type Contract, contract, type HttpMethod } from '../src/contract.js'
import { toolsOf } from '../src/mcp/tools.js'
import { newUser, signIn, startServer, type TestServer, tokenFor } from './support/server.js'

type Task = components['schemas']['Task']

const accept = 'application/json, text/event-stream'

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

const clients: Client[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
})

/** The SDK's client for the user's token; its requests go through the server's recorded, checked fetch. */
async function connect(token: string, on: TestServer = server): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(`${on.url}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
    fetch: (url, init) => on.fetch(new URL(url).pathname, init),
  })
  const client = new Client({ name: 'mcp-test', version: '1.0.0' })
  await client.connect(transport)
  clients.push(client)
  return client
}

async function agent() {
  const user = await signIn(server)
  return { ...user, mcp: await connect(user.token) }
}

async function call(client: Client, name: string, args: Record<string, unknown> = {}) {
  return (await client.callTool({ name, arguments: args })) as CallToolResult
}

/** A successful call's structured result, which its text repeats. */
async function result<T = Record<string, unknown>>(client: Client, name: string, args: Record<string, unknown> = {}): Promise<T> {
  const outcome = await call(client, name, args)
  expect(outcome.isError).toBeFalsy()
  expect(JSON.parse((outcome.content[0] as { text: string }).text)).toEqual(outcome.structuredContent)
  return outcome.structuredContent as T
}

/** A failed call's text. */
async function refusal(client: Client, name: string, args: Record<string, unknown>): Promise<string> {
  const outcome = await call(client, name, args)
  expect(outcome.isError).toBe(true)
  expect(outcome.structuredContent).toBeUndefined()
  return (outcome.content[0] as { text: string }).text
}

const tasksOf = (user_id: string) => server.sql<Task[]>`select * from tasks where user_id = ${user_id} order by id`

function post(body: unknown, headers: Record<string, string> = {}, on: TestServer = server) {
  return on.fetch('/mcp', {
    method: 'POST',
    headers: { Accept: accept, 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(body),
  })
}

const toolNames = [
  'add_task',
  'complete_task',
  'complete_tasks',
  'count_tasks',
  'delete_task',
  'delete_tasks',
  'get_task',
  'list_tasks',
  'update_task',
]

describe('tools/list', () => {
  test('when an agent lists the tools, then there is one per x-mcp-tool operation, each with object schemas without $ref that ajv compiles', async () => {
    const { mcp } = await agent()
    const { tools } = await mcp.listTools()
    expect(tools.map((t) => t.name).sort()).toEqual(toolNames)
    const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void
    const ajv = new Ajv2020({ strict: true, allowUnionTypes: true })
    addFormats(ajv)
    for (const tool of tools) {
      expect(tool.description?.length).toBeGreaterThan(10)
      expect(tool.inputSchema.type).toBe('object')
      expect(tool.outputSchema?.type).toBe('object')
      expect(JSON.stringify(tool)).not.toContain('$ref')
      expect(() => ajv.compile(tool.inputSchema)).not.toThrow()
      expect(() => ajv.compile(tool.outputSchema as object)).not.toThrow()
    }
  })

  test("when the tools are listed, then each merges the operation's path and query parameters and body fields, with their rules and descriptions", async () => {
    const { mcp } = await agent()
    const byName = new Map((await mcp.listTools()).tools.map((t) => [t.name, t]))
    const add = byName.get('add_task')
    expect(add?.inputSchema.required).toEqual(['title'])
    expect(add?.inputSchema.additionalProperties).toBe(false)
    expect(add?.inputSchema.properties?.title).toMatchObject({ type: 'string', minLength: 1, maxLength: 200 })
    expect(add?.inputSchema.properties?.priority).toMatchObject({ enum: ['low', 'medium', 'high', 'urgent'], default: 'medium' })
    expect(add?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: false })
    const update = byName.get('update_task')
    expect(update?.inputSchema.required).toEqual(['task_id'])
    expect(update?.inputSchema.properties?.task_id).toMatchObject({ type: 'integer', minimum: 1, description: "The task's id." })
    expect(update?.inputSchema.minProperties).toBe(2) // the task and at least one field
    const list = byName.get('list_tasks')
    expect(list?.inputSchema.properties?.limit).toMatchObject({ type: 'integer', default: 100, description: 'The page size.' })
    expect(list?.annotations).toMatchObject({ readOnlyHint: true })
    expect(list?.outputSchema?.required).toEqual(['tasks'])
    expect(Object.keys(list?.outputSchema?.properties ?? {})).toEqual(['tasks', 'next_cursor'])
    const bulk = byName.get('complete_tasks')
    expect(bulk?.inputSchema.required).toEqual(['completed'])
    expect(Object.keys(bulk?.inputSchema.properties ?? {})).toEqual(expect.arrayContaining(['status', 'q', 'tag', 'completed']))
    expect(byName.get('delete_task')?.outputSchema?.required).toEqual(['deleted', 'task_id'])
    expect(byName.get('delete_tasks')?.inputSchema.required).toEqual(['status'])
  })
})

describe('calling each tool', () => {
  test('when an agent adds, reads, lists, changes, counts, completes and deletes tasks, then each call does what the HTTP operation does', async () => {
    const { user_id, api, mcp } = await agent()
    const added = await result<Task>(mcp, 'add_task', {
      title: 'Water the plants',
      tags: ['home'],
      priority: 'high',
      due_date: '2030-05-01T09:00:00+02:00',
    })
    expect(added).toMatchObject({
      title: 'Water the plants',
      user_id,
      tags: ['home'],
      priority: 'high',
      due_date: '2030-05-01T07:00:00.000Z',
    })
    const second = await result<Task>(mcp, 'add_task', { title: 'Call the plumber' })
    expect(second.priority).toBe('medium') // the contract's default, as over HTTP
    expect((await tasksOf(user_id)).map((t) => t.title)).toEqual(['Water the plants', 'Call the plumber'])

    const overHttp = await api.GET('/api/tasks/{task_id}', { params: { path: { task_id: added.id } } })
    expect(await result(mcp, 'get_task', { task_id: added.id })).toEqual(overHttp.data)

    const first = await result<{ tasks: Task[]; next_cursor?: string }>(mcp, 'list_tasks', { limit: 1 })
    expect(first.tasks.map((t) => t.id)).toEqual([second.id])
    expect(first.next_cursor).toEqual(expect.any(String))
    const rest = await result<{ tasks: Task[]; next_cursor?: string }>(mcp, 'list_tasks', { limit: 1, cursor: first.next_cursor })
    expect(rest).toEqual({ tasks: [overHttp.data] })
    expect((await result<{ tasks: Task[] }>(mcp, 'list_tasks', { tag: ['home'] })).tasks.map((t) => t.id)).toEqual([added.id])

    const updated = await result<Task>(mcp, 'update_task', { task_id: added.id, title: 'Water the garden', description: null })
    expect(updated.title).toBe('Water the garden')
    const completed = await result<Task>(mcp, 'complete_task', { task_id: second.id })
    expect(completed.completed).toBe(true)
    const counts = await result(mcp, 'count_tasks')
    expect(counts).toEqual({ all: 2, pending: 1, completed: 1, overdue: 0 })
    expect(counts).toEqual((await api.GET('/api/tasks/counts')).data)

    expect(await result(mcp, 'complete_tasks', { completed: true, status: 'pending' })).toEqual({ count: 1 })
    expect((await tasksOf(user_id)).every((t) => t.completed)).toBe(true)
    expect(await result(mcp, 'delete_task', { task_id: added.id })).toEqual({ deleted: true, task_id: added.id })
    expect((await tasksOf(user_id)).map((t) => t.id)).toEqual([second.id])
    expect(await result(mcp, 'delete_tasks', { status: 'completed' })).toEqual({ count: 1 })
    expect(await tasksOf(user_id)).toEqual([])
  })

  test('when complete_task is given no completed, then it flips the task as PATCH …/complete does without a body', async () => {
    const { mcp } = await agent()
    const task = await result<Task>(mcp, 'add_task', { title: 'Flip me' })
    expect((await result<Task>(mcp, 'complete_task', { task_id: task.id })).completed).toBe(true)
    expect((await result<Task>(mcp, 'complete_task', { task_id: task.id })).completed).toBe(false)
    expect((await result<Task>(mcp, 'complete_task', { task_id: task.id, completed: false })).completed).toBe(false)
  })
})

describe('invalid arguments are a tool error naming each one, and nothing is written', () => {
  const cases: [string, string, Record<string, unknown>, string][] = [
    ['a title of the wrong type', 'add_task', { title: 5 }, '- title: must be string'],
    ['an unknown argument', 'add_task', { title: 'x', colour: 'red' }, '- colour: must NOT have additional properties'],
    ['no title', 'add_task', { description: 'x' }, "- title: must have required property 'title'"],
    ['a due date that is not a date-time', 'add_task', { title: 'x', due_date: 'tomorrow' }, '- due_date: must match format "date-time"'],
    [
      'a due date in year 0',
      'add_task',
      { title: 'x', due_date: '0000-01-01T00:00:00Z' },
      '- due_date: must be a date-time from year 0001 to 9999 in UTC, without a leap second',
    ],
    ['a lone surrogate in the title', 'add_task', { title: 'a\ud800b' }, '- title: must not contain unpaired UTF-16 surrogates'],
    ['a blank title', 'add_task', { title: '   ' }, '- title: must not be blank or contain NUL characters'],
    ['the same tag twice', 'add_task', { title: 'x', tags: ['home', 'Home'] }, '- tags/1: repeats the tag "home"'],
    ['a recurrence without a due date', 'add_task', { title: 'x', recurrence: 'daily' }, '- recurrence: needs a due_date'],
    ['a task id as a string', 'get_task', { task_id: '1' }, '- task_id: must be integer'],
    ['a cursor that is not one', 'list_tasks', { cursor: 'not a cursor' }, '- cursor: is not a cursor from a Link header'],
    ['a limit too large', 'list_tasks', { limit: 501 }, '- limit: must be <= 500'],
    ['an update without any field', 'update_task', { task_id: 1 }, '- arguments: must NOT have fewer than 2 properties'],
    ['no status for delete_tasks', 'delete_tasks', {}, "- status: must have required property 'status'"],
  ]
  test.each(cases)('when %s, then the error says so', async (_, tool, args, line) => {
    const { user_id, mcp } = await agent()
    const text = await refusal(mcp, tool, args)
    expect(text.split('\n')[0]).toBe('Invalid arguments:')
    expect(text).toContain(line)
    expect(await tasksOf(user_id)).toEqual([])
  })

  test('when several arguments are wrong, then each is named', async () => {
    const { mcp } = await agent()
    const text = await refusal(mcp, 'add_task', { title: '', priority: 'soon', colour: 'red' })
    expect(text.split('\n').slice(1).sort()).toEqual([
      '- colour: must NOT have additional properties',
      '- priority: must be equal to one of the allowed values',
      '- title: must NOT have fewer than 1 characters',
      '- title: must not be blank or contain NUL characters',
    ])
  })

  test('when a tool that does not exist is called, then it is a JSON-RPC error, not a tool result', async () => {
    const { mcp } = await agent()
    await expect(call(mcp, 'drop_tables')).rejects.toThrow(/Unknown tool: drop_tables/)
  })
})

describe('isolation: a tool acts for the token’s user only', () => {
  test("when user B names user A's task, then it is not found for every tool, and A's task is untouched", async () => {
    const a = await agent()
    const b = await agent()
    const task = await result<Task>(a.mcp, 'add_task', { title: 'A’s secret' })
    const before = await tasksOf(a.user_id)
    const attempts: [string, Record<string, unknown>][] = [
      ['get_task', { task_id: task.id }],
      ['update_task', { task_id: task.id, title: 'hijacked' }],
      ['complete_task', { task_id: task.id }],
      ['delete_task', { task_id: task.id }],
    ]
    for (const [tool, args] of attempts) {
      expect(await refusal(b.mcp, tool, args)).toBe(`Not Found: Task ${task.id} does not exist.`)
    }
    expect(await result(b.mcp, 'list_tasks')).toEqual({ tasks: [] })
    expect(await result(b.mcp, 'complete_tasks', { completed: true })).toEqual({ count: 0 })
    expect(await result(b.mcp, 'delete_tasks', { status: 'all' })).toEqual({ count: 0 })
    expect(await tasksOf(a.user_id)).toEqual(before)
    expect((await result<{ tasks: Task[] }>(a.mcp, 'list_tasks')).tasks.map((t) => t.id)).toEqual([task.id])
  })
})

describe('authentication', () => {
  const challenge = () => `resource_metadata="${server.url}/.well-known/oauth-protected-resource/mcp"`

  test('when POST /mcp has no token, then it is a 401 whose challenge points to the resource metadata', async () => {
    const response = await post({ jsonrpc: '2.0', id: 1, method: 'tools/list' })
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toBe(`Bearer realm="todo-api", ${challenge()}`)
  })

  test('when POST /mcp has a token that does not verify, then it is a 401 with invalid_token and the pointer', async () => {
    const token = `${await tokenFor(newUser())}x`
    const response = await post({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { Authorization: `Bearer ${token}` })
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer realm="todo-api", error="invalid_token", error_description="[^"]+", /)
    expect(response.headers.get('www-authenticate')).toContain(challenge())
  })

  test('when the SDK client connects without a token, then it fails with the 401', async () => {
    const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
      fetch: (url, init) => server.fetch(new URL(url).pathname, init),
    })
    await expect(new Client({ name: 'anonymous', version: '1.0.0' }).connect(transport)).rejects.toThrow(/401/)
  })

  test('when the metadata is asked, then it names the API (and /mcp) as resources read by bearer header, without an issuer when none is configured', async () => {
    const api = await server.fetch('/.well-known/oauth-protected-resource')
    expect(api.status).toBe(200)
    expect(await api.json()).toEqual({ resource: server.url, bearer_methods_supported: ['header'], resource_name: 'Todo API' })
    const mcp = await server.fetch('/.well-known/oauth-protected-resource/mcp')
    expect(await mcp.json()).toEqual({
      resource: `${server.url}/mcp`,
      bearer_methods_supported: ['header'],
      resource_name: 'Todo API (MCP)',
    })
  })

  test('when JWT_ISSUER is a URL, then the metadata names it as the authorization server; behind a trusted proxy, the origin is the one the client used', async () => {
    const issuer = 'https://auth.example.com'
    const other = await startServer({ auth: { issuer }, trustProxy: ['loopback'] })
    try {
      const response = await other.fetch('/.well-known/oauth-protected-resource/mcp', {
        headers: { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'todo.example.com' },
      })
      expect(await response.json()).toEqual({
        resource: 'https://todo.example.com/mcp',
        authorization_servers: [issuer],
        bearer_methods_supported: ['header'],
        resource_name: 'Todo API (MCP)',
      })
    } finally {
      await other.close()
    }
  })
})

describe('the transport, over plain HTTP', () => {
  test('when a request is posted, then the answer is one JSON-RPC response as JSON', async () => {
    const { token } = await signIn(server)
    const response = await post({ jsonrpc: '2.0', id: 7, method: 'tools/list' }, { Authorization: `Bearer ${token}` })
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^application\/json/)
    const answer = await response.json()
    expect(answer).toMatchObject({ jsonrpc: '2.0', id: 7, result: { tools: expect.any(Array) } })
  })

  test('when a notification is posted, then it is a 202 without a body', async () => {
    const { token } = await signIn(server)
    const response = await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, { Authorization: `Bearer ${token}` })
    expect(response.status).toBe(202)
    expect(await response.text()).toBe('')
  })

  test('when the client does not accept both JSON and an event stream, then it is a 406 problem', async () => {
    const { token } = await signIn(server)
    const response = await post(
      { jsonrpc: '2.0', id: 1, method: 'tools/list' },
      { Authorization: `Bearer ${token}`, Accept: 'application/json' },
    )
    expect(response.status).toBe(406)
    expect((await response.json()).type).toBe('urn:todo-api:problem:not-acceptable')
  })

  test('when the protocol version header names one the SDK does not speak, then it is a 400 problem', async () => {
    const { token } = await signIn(server)
    const headers = { Authorization: `Bearer ${token}`, 'MCP-Protocol-Version': '1999-01-01' }
    const response = await post({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, headers)
    expect(response.status).toBe(400)
    const problem = await response.json()
    expect(problem.type).toBe('urn:todo-api:problem:bad-request')
    expect(problem.detail).toMatch(/Unsupported protocol version: 1999-01-01/)
  })

  test('when the body is not one JSON-RPC message (a batch, another object, a tool call without an arguments object), then it is a 422', async () => {
    const { token } = await signIn(server)
    const bodies = [
      [{ jsonrpc: '2.0', id: 1, method: 'tools/list' }],
      { hello: 'world' },
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'add_task', arguments: ['Buy milk'] } },
    ]
    for (const body of bodies) {
      const response = await post(body, { Authorization: `Bearer ${token}` })
      expect(response.status).toBe(422)
    }
  })

  test('when /mcp is asked with GET, then it is a 405: there are no sessions to stream', async () => {
    const { token } = await signIn(server)
    const response = await server.fetch('/mcp', { headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' } })
    expect(response.status).toBe(405)
  })
})

describe('rate limits', () => {
  test('when a user is at their limit, then a tool call is refused with 429 like any request, HTTP and MCP counting together', async () => {
    const limited = await startServer({ rateLimit: { perUser: { limit: 3, windowSeconds: 3600 } } })
    try {
      const { token, api } = await signIn(limited)
      expect((await api.GET('/api/tasks')).response.status).toBe(200)
      const count = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'count_tasks', arguments: {} } }
      const callCount = () => post(count, { Authorization: `Bearer ${token}` }, limited)
      expect((await callCount()).status).toBe(200)
      expect((await callCount()).status).toBe(200)
      const refused = await callCount()
      expect(refused.status).toBe(429)
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/)
    } finally {
      await limited.close()
    }
  })
})

describe('the tools are the contract’s', () => {
  /** A copy of the contract in which one more operation names a tool. */
  function naming(path: string, method: HttpMethod, name: string): Contract {
    const doc = structuredClone(contract)
    Object.assign(doc.paths[path]?.[method] ?? {}, { 'x-mcp-tool': name })
    return doc
  }

  test('when an operation gains an x-mcp-tool, then it is a tool, with its parameters and body as arguments', () => {
    const tool = toolsOf(naming('/api/tasks/{task_id}', 'put', 'replace_task')).find((t) => t.definition.name === 'replace_task')
    expect(tool?.operationId).toBe('replaceMyTask')
    expect(tool?.definition.inputSchema.required).toEqual(['task_id', 'title'])
    expect(tool?.definition.inputSchema.description).toBe('An omitted optional field keeps its current value.')
    expect(toolsOf(contract).map((t) => t.definition.name)).not.toContain('replace_task')
  })

  test('when a body field and a parameter share a name, then the tools cannot be made, and the error says why', () => {
    const doc = structuredClone(contract)
    const { schemas } = doc.components as { schemas: { BulkCompletion: { properties: Record<string, unknown> } } }
    schemas.BulkCompletion.properties.status = { type: 'string' }
    expect(() => toolsOf(doc)).toThrow('x-mcp-tool complete_tasks (bulkUpdateMyTasks): "status" is both a query and a body field')
  })

  test('when a path-style operation (with a user_id) names a tool, then the tools cannot be made', () => {
    expect(() => toolsOf(naming('/api/{user_id}/tasks/{task_id}', 'get', 'get_any_task'))).toThrow(/get_any_task .*cannot take a user_id/)
  })

  test('when two operations name the same tool, then the tools cannot be made', () => {
    expect(() => toolsOf(naming('/api/tasks/{task_id}', 'put', 'update_task'))).toThrow(
      'x-mcp-tool update_task names more than one operation',
    )
  })
})
