// Recurring tasks (SPEC.md "Organizing tasks", issue 8): completing a task that has a recurrence,
// by any operation, creates its next occurrence in the same transaction, exactly once; the answer
// to a single-task write carries it as next_occurrence. Periods are counted in UTC; a monthly task
// keeps the day of month of its first occurrence, clamped to each month's last day.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import type { components } from '../generated/api.js'
import { type Sent, type Style, send, styles, tasksUrl } from './bad-input.helpers.js'
import { signIn, startServer, type TestServer } from './support/server.js'

type Task = components['schemas']['Task']
type Fields = Partial<Omit<components['schemas']['TaskCreate'], 'title'>> & { title: string }

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

interface User {
  user_id: string
  token: string
}

function call(user: User, style: Style, method: string, rest = '', body?: unknown, query = ''): Promise<Sent> {
  return send(server, tasksUrl(style, user.user_id, `${rest}${query}`), { method, token: user.token, body })
}

async function createTask(user: User, fields: Fields): Promise<Task> {
  const sent = await call(user, 'token style', 'POST', '', fields)
  if (sent.status !== 201) throw new Error(`create answered ${sent.status}: ${JSON.stringify(sent.body)}`)
  return sent.body as Task
}

async function getTask(user: User, id: number): Promise<Task> {
  const sent = await call(user, 'token style', 'GET', `/${id}`)
  expect(sent.status).toBe(200)
  return sent.body as Task
}

/** The user's tasks, as the API shows them, by id. */
async function tasksOf(user: User): Promise<Task[]> {
  const sent = await call(user, 'token style', 'GET', '', undefined, '?sort=created_at&order=asc&limit=500')
  expect(sent.status).toBe(200)
  return (sent.body as Task[]).sort((a, b) => a.id - b.id)
}

const countOf = async (user_id: string) => Number((await server.sql`select count(*)::int as n from tasks where user_id = ${user_id}`)[0]?.n)

/** One way to complete a task; `undefined` for a bulk write, which answers a count, not the task. */
interface Completion {
  name: string
  run(user: User, style: Style, task: Task): Promise<Task | undefined>
}

async function ok(sent: Sent): Promise<Task> {
  expect(sent.status).toBe(200)
  return sent.body as Task
}

const toggle: Completion = { name: 'toggle (…/complete, no body)', run: (u, s, t) => call(u, s, 'PATCH', `/${t.id}/complete`).then(ok) }
const explicit: Completion = {
  name: '…/complete {completed: true}',
  run: (u, s, t) => call(u, s, 'PATCH', `/${t.id}/complete`, { completed: true }).then(ok),
}
const patch: Completion = {
  name: 'PATCH {completed: true}',
  run: (u, s, t) => call(u, s, 'PATCH', `/${t.id}`, { completed: true }).then(ok),
}
const put: Completion = {
  name: 'PUT {title, completed: true}',
  run: (u, s, t) => call(u, s, 'PUT', `/${t.id}`, { title: t.title, completed: true }).then(ok),
}
/** A bulk completion of the pending tasks due no later than `t` (so not of a successor, due a period later). */
const bulkOf = (expectSome: boolean): Completion => ({
  name: 'bulk PATCH /tasks {completed: true}',
  run: async (u, s, t) => {
    const until = new Date(Date.parse(t.due_date as string) + 1).toISOString()
    const sent = await call(u, s, 'PATCH', '', { completed: true }, `?status=pending&due_before=${encodeURIComponent(until)}`)
    expect(sent.status).toBe(200)
    if (expectSome) expect((sent.body as { count: number }).count).toBe(1)
    return undefined
  },
})
const bulk = bulkOf(true)
const single = [toggle, explicit, patch, put]
const completions = [...single, bulk]
const across = (list: Completion[]) => list.flatMap((c) => styles.map((s): [string, Completion, Style] => [`${c.name}, ${s}`, c, s]))

const day = 86_400_000
const iso = (ms: number) => new Date(ms).toISOString()

/** The fields a successor copies from the task it follows. */
const copied = (t: Task) => ({ title: t.title, description: t.description, priority: t.priority, tags: t.tags, recurrence: t.recurrence })

describe('every way of completing a recurring task creates exactly one next occurrence', () => {
  const recurring: Fields = {
    title: 'water the plants',
    description: 'balcony too',
    priority: 'high',
    tags: ['Home', 'garden'],
    due_date: '2026-04-10T07:00:00Z',
    recurrence: 'daily',
    remind_at: '2026-04-10T06:45:00Z',
  }

  test.each(across(completions))('when it is completed by %s, then the successor exists after that one request', async (_, how, style) => {
    const user = await signIn(server)
    const task = await createTask(user, recurring)
    const answer = await how.run(user, style, task)
    const tasks = await tasksOf(user)
    expect(tasks).toHaveLength(2)
    const [done, next] = tasks as [Task, Task]
    expect(done).toEqual({ ...task, completed: true, updated_at: expect.any(String) })
    expect(next.id).toBeGreaterThan(task.id)
    expect(next).toMatchObject({
      ...copied(task),
      completed: false,
      due_date: '2026-04-11T07:00:00.000Z',
      remind_at: '2026-04-11T06:45:00.000Z',
      user_id: user.user_id,
    })
    expect(next).not.toHaveProperty('next_occurrence')
    if (answer !== undefined) {
      const { next_occurrence, ...rest } = answer
      expect(rest).toEqual(done)
      expect(next_occurrence).toEqual(next)
    }
    // Only the answer to the write that completed it says where the next one is.
    expect(await getTask(user, task.id)).not.toHaveProperty('next_occurrence')
  })

  test.each(across(completions))(
    'when it is completed (%s), un-completed and completed again, then there is still one successor',
    async (_, how, style) => {
      const user = await signIn(server)
      const task = await createTask(user, recurring)
      await how.run(user, style, task)
      expect(await countOf(user.user_id)).toBe(2)
      const reopened = await ok(await call(user, style, 'PATCH', `/${task.id}`, { completed: false }))
      expect(reopened.completed).toBe(false)
      expect(reopened).not.toHaveProperty('next_occurrence')
      const again = await how.run(user, style, reopened)
      if (again !== undefined) expect(again).not.toHaveProperty('next_occurrence')
      expect((await getTask(user, task.id)).completed).toBe(true)
      expect(await countOf(user.user_id)).toBe(2)
    },
  )

  test.each(across([explicit, patch, put]))(
    'when an already completed recurring task is completed again (%s), then nothing is created',
    async (_, how, style) => {
      const user = await signIn(server)
      const task = await createTask(user, recurring)
      await toggle.run(user, style, task)
      const again = await how.run(user, style, await getTask(user, task.id))
      expect(again?.completed).toBe(true)
      expect(again).not.toHaveProperty('next_occurrence')
      expect(await countOf(user.user_id)).toBe(2)
    },
  )

  test('when toggled four times, then only the first completion created a task', async () => {
    const user = await signIn(server)
    const task = await createTask(user, recurring)
    const answers: Task[] = []
    for (let i = 0; i < 4; i++) answers.push(await ok(await call(user, 'token style', 'PATCH', `/${task.id}/complete`)))
    expect(answers.map((a) => a.completed)).toEqual([true, false, true, false])
    expect(answers.map((a) => a.next_occurrence !== undefined)).toEqual([true, false, false, false])
    expect(await countOf(user.user_id)).toBe(2)
  })

  test.each(across(completions))('when a task without a recurrence is completed (%s), then nothing is created', async (_, how, style) => {
    const user = await signIn(server)
    const task = await createTask(user, { ...recurring, recurrence: null })
    const answer = await how.run(user, style, task)
    if (answer !== undefined) {
      expect(answer.completed).toBe(true)
      expect(answer).not.toHaveProperty('next_occurrence')
    }
    expect(await countOf(user.user_id)).toBe(1)
  })

  test('when a write changes a recurring task without completing it, then nothing is created', async () => {
    const user = await signIn(server)
    const task = await createTask(user, recurring)
    for (const body of [{ title: 'renamed' }, { priority: 'low' }, { completed: false }, { due_date: '2026-05-01T00:00:00Z' }]) {
      expect(await ok(await call(user, 'token style', 'PATCH', `/${task.id}`, body))).not.toHaveProperty('next_occurrence')
    }
    await ok(await call(user, 'token style', 'PUT', `/${task.id}`, { title: 'again' }))
    await ok(await call(user, 'token style', 'PATCH', `/${task.id}/complete`, { completed: false }))
    expect(await countOf(user.user_id)).toBe(1)
  })

  test('when a bulk completion covers several recurring and plain tasks, then each recurring one rolls over once and the successors stay pending', async () => {
    const user = await signIn(server)
    const daily = await createTask(user, { ...recurring, tags: ['chores'] })
    const weekly = await createTask(user, { ...recurring, title: 'bins', recurrence: 'weekly', remind_at: null, tags: ['Chores'] })
    const monthly = await createTask(user, {
      ...recurring,
      title: 'rent',
      recurrence: 'monthly',
      due_date: '2026-01-31T09:00:00Z',
      remind_at: '2026-01-31T08:45:00Z',
      tags: ['CHORES'],
    })
    const plain = await createTask(user, { title: 'plain', tags: ['chores'] })
    const elsewhere = await createTask(user, { ...recurring, title: 'not tagged', tags: ['work'] })
    const sent = await call(user, 'path style', 'PATCH', '', { completed: true }, '?tag=chores')
    expect(sent.body).toEqual({ count: 4 })
    const tasks = await tasksOf(user)
    expect(tasks).toHaveLength(8)
    const successors = tasks.filter((t) => t.id > elsewhere.id)
    expect(successors.map((t) => [t.title, t.completed, t.due_date, t.remind_at])).toEqual(
      expect.arrayContaining([
        [daily.title, false, '2026-04-11T07:00:00.000Z', '2026-04-11T06:45:00.000Z'],
        [weekly.title, false, '2026-04-17T07:00:00.000Z', null],
        [monthly.title, false, '2026-02-28T09:00:00.000Z', '2026-02-28T08:45:00.000Z'],
      ]),
    )
    expect(successors).toHaveLength(3)
    expect(tasks.find((t) => t.id === plain.id)?.completed).toBe(true)
    expect(tasks.find((t) => t.id === elsewhere.id)?.completed).toBe(false)
    // Again: the successors are completed and roll over once each; the originals do not again.
    const again = await call(user, 'token style', 'PATCH', '', { completed: true }, '?tag=chores')
    expect(again.status).toBe(200)
    expect(await countOf(user.user_id)).toBe(11)
  })
})

describe('the next due date, in UTC', () => {
  // [name, recurrence, first due date, the due dates of the next occurrences, in order]
  const chains: [string, 'daily' | 'weekly' | 'monthly', string, string[]][] = [
    ['daily', 'daily', '2026-03-07T09:30:00Z', ['2026-03-08T09:30:00.000Z', '2026-03-09T09:30:00.000Z']],
    [
      'daily across a DST change elsewhere (24 hours in UTC)',
      'daily',
      '2026-03-28T23:00:00Z',
      ['2026-03-29T23:00:00.000Z', '2026-03-30T23:00:00.000Z'],
    ],
    ['daily across the year end', 'daily', '2026-12-31T23:59:59.999Z', ['2027-01-01T23:59:59.999Z']],
    ['daily across Feb 29 in a leap year', 'daily', '2028-02-28T12:00:00Z', ['2028-02-29T12:00:00.000Z', '2028-03-01T12:00:00.000Z']],
    ['weekly', 'weekly', '2026-06-03T18:00:00Z', ['2026-06-10T18:00:00.000Z', '2026-06-17T18:00:00.000Z']],
    ['weekly across the year end', 'weekly', '2026-12-28T08:00:00Z', ['2027-01-04T08:00:00.000Z', '2027-01-11T08:00:00.000Z']],
    [
      'monthly from Jan 31 in a leap year',
      'monthly',
      '2028-01-31T09:00:00Z',
      ['2028-02-29T09:00:00.000Z', '2028-03-31T09:00:00.000Z', '2028-04-30T09:00:00.000Z', '2028-05-31T09:00:00.000Z'],
    ],
    ['monthly from Jan 31 in a common year', 'monthly', '2027-01-31T09:00:00Z', ['2027-02-28T09:00:00.000Z', '2027-03-31T09:00:00.000Z']],
    ['monthly from Jan 30', 'monthly', '2027-01-30T00:00:00Z', ['2027-02-28T00:00:00.000Z', '2027-03-30T00:00:00.000Z']],
    [
      'monthly from the 15th',
      'monthly',
      '2026-10-15T10:00:00Z',
      ['2026-11-15T10:00:00.000Z', '2026-12-15T10:00:00.000Z', '2027-01-15T10:00:00.000Z'],
    ],
    [
      'monthly from Dec 31 across the year end',
      'monthly',
      '2026-12-31T18:00:00Z',
      ['2027-01-31T18:00:00.000Z', '2027-02-28T18:00:00.000Z', '2027-03-31T18:00:00.000Z'],
    ],
    // 22:00 at -05:00 on Jan 31 is 03:00 UTC on Feb 1: the day of month is counted in UTC.
    [
      'monthly from a date given with an offset',
      'monthly',
      '2028-01-31T22:00:00-05:00',
      ['2028-03-01T03:00:00.000Z', '2028-04-01T03:00:00.000Z'],
    ],
  ]

  test.each(chains)(
    'when a %s task is completed occurrence after occurrence, then each is due one period after the first',
    async (_, recurrence, due, expected) => {
      const user = await signIn(server)
      let current = await createTask(user, { title: 'chain', due_date: due, recurrence })
      const seen: string[] = []
      for (const _step of expected) {
        const answer = await toggle.run(user, 'token style', current)
        const next = answer?.next_occurrence
        if (!next) throw new Error(`no next_occurrence after completing ${current.due_date}`)
        expect(next).toMatchObject({ ...copied(current), completed: false })
        seen.push(next.due_date as string)
        current = next
      }
      expect(seen).toEqual(expected)
      expect(await countOf(user.user_id)).toBe(expected.length + 1)
    },
  )

  test('when a monthly task has a reminder, then the reminder moves by as much as the due date (29, then 31 days)', async () => {
    const user = await signIn(server)
    const first = await createTask(user, {
      title: 'rent',
      due_date: '2028-01-31T09:00:00Z',
      remind_at: '2028-01-30T20:00:00Z',
      recurrence: 'monthly',
    })
    const second = (await patch.run(user, 'path style', first))?.next_occurrence as Task
    expect([second.due_date, second.remind_at]).toEqual(['2028-02-29T09:00:00.000Z', '2028-02-28T20:00:00.000Z'])
    const third = (await put.run(user, 'token style', second))?.next_occurrence as Task
    expect([third.due_date, third.remind_at]).toEqual(['2028-03-31T09:00:00.000Z', '2028-03-30T20:00:00.000Z'])
  })

  test('when the reminder is after the due date, then it keeps its distance too', async () => {
    const user = await signIn(server)
    const first = await createTask(user, {
      title: 'x',
      due_date: '2026-12-31T10:00:00Z',
      remind_at: '2027-01-02T10:00:00.500Z',
      recurrence: 'weekly',
    })
    const next = (await explicit.run(user, 'token style', first))?.next_occurrence as Task
    expect([next.due_date, next.remind_at]).toEqual(['2027-01-07T10:00:00.000Z', iso(Date.parse('2027-01-02T10:00:00.500Z') + 7 * day)])
  })

  test('when the due date of an occurrence is changed, then the next one counts from the new date', async () => {
    const user = await signIn(server)
    const first = await createTask(user, { title: 'moved', due_date: '2028-01-31T09:00:00Z', recurrence: 'monthly' })
    const second = (await toggle.run(user, 'token style', first))?.next_occurrence as Task
    expect(second.due_date).toBe('2028-02-29T09:00:00.000Z')
    const moved = await ok(await call(user, 'token style', 'PATCH', `/${second.id}`, { due_date: '2028-04-30T09:00:00Z' }))
    const third = (await toggle.run(user, 'token style', moved))?.next_occurrence as Task
    expect(third.due_date).toBe('2028-05-30T09:00:00.000Z')
  })

  test('when the recurrence is changed before completing, then the new period applies', async () => {
    const user = await signIn(server)
    const task = await createTask(user, { title: 'x', due_date: '2026-07-01T00:00:00Z', recurrence: 'daily' })
    const weekly = await ok(await call(user, 'token style', 'PATCH', `/${task.id}`, { recurrence: 'weekly' }))
    const next = (await toggle.run(user, 'token style', weekly))?.next_occurrence as Task
    expect([next.recurrence, next.due_date]).toEqual(['weekly', '2026-07-08T00:00:00.000Z'])
  })

  test('when a task gets a recurrence and is completed in one PATCH, then it rolls over', async () => {
    const user = await signIn(server)
    const task = await createTask(user, { title: 'x', due_date: '2026-07-01T00:00:00Z' })
    const answer = await ok(await call(user, 'token style', 'PATCH', `/${task.id}`, { recurrence: 'daily', completed: true }))
    expect(answer.next_occurrence?.due_date).toBe('2026-07-02T00:00:00.000Z')
    expect(await countOf(user.user_id)).toBe(2)
  })
})

describe('concurrency', () => {
  test('when 10 requests complete one recurring task at once, then exactly one successor is created and one answer names it', async () => {
    const user = await signIn(server)
    const task = await createTask(user, { title: 'race', due_date: '2026-09-01T00:00:00Z', recurrence: 'daily' })
    const answers = await Promise.all(Array.from({ length: 10 }, () => explicit.run(user, 'token style', task)))
    expect(answers.every((a) => a?.completed === true)).toBe(true)
    const named = answers.filter((a) => a?.next_occurrence !== undefined)
    expect(named).toHaveLength(1)
    const tasks = await tasksOf(user)
    expect(tasks).toHaveLength(2)
    expect(named[0]?.next_occurrence).toEqual(tasks[1])
  })

  test('when 10 requests by every path (PATCH, PUT, …/complete, bulk) complete one recurring task at once, then exactly one successor exists', async () => {
    const user = await signIn(server)
    const task = await createTask(user, { title: 'race', due_date: '2026-09-01T00:00:00Z', recurrence: 'weekly' })
    const racing = bulkOf(false)
    const paths = [explicit, patch, put, racing, explicit, patch, put, racing, explicit, patch]
    const answers = await Promise.all(paths.map((how, i) => how.run(user, styles[i % 2] as Style, task)))
    expect(answers.filter((a) => a?.next_occurrence !== undefined).length).toBeLessThanOrEqual(1)
    const tasks = await tasksOf(user)
    expect(tasks.map((t) => [t.completed, t.due_date])).toEqual([
      [true, '2026-09-01T00:00:00.000Z'],
      [false, '2026-09-08T00:00:00.000Z'],
    ])
  })
})
