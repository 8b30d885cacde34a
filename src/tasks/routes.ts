import { createHash } from 'node:crypto'
import type { Request, Response } from 'express'
import { userOf } from '../auth.js'
import type { Sql } from '../db.js'
import type { Handler, Handlers } from '../operations.js'
import { type FieldError, invalid, Problem } from '../problems.js'
import { etagOf, noneMatchHolds, versionsAccepted } from './etag.js'
import {
  completeTask,
  completeTasks,
  countTasks,
  createTask,
  createTaskOnce,
  deleteTask,
  deleteTasks,
  type Filters,
  getTask,
  type ListOptions,
  listTasks,
  type Position,
  pruneIdempotencyKeys,
  type Task,
  taskExists,
  updateTask,
  type Versions,
} from './repository.js'

type TaskOperations = Pick<
  Handlers,
  | 'listTasks'
  | 'listMyTasks'
  | 'createTask'
  | 'createMyTask'
  | 'getTask'
  | 'getMyTask'
  | 'replaceTask'
  | 'replaceMyTask'
  | 'updateTask'
  | 'updateMyTask'
  | 'deleteTask'
  | 'deleteMyTask'
  | 'toggleTaskCompletion'
  | 'toggleMyTaskCompletion'
  | 'countTasks'
  | 'countMyTasks'
  | 'bulkUpdateTasks'
  | 'bulkUpdateMyTasks'
  | 'bulkDeleteTasks'
  | 'bulkDeleteMyTasks'
>

/**
 * One handler per task operation; the path and token spellings share each function. `changed` is
 * told of the user of every write that committed (the live event streams).
 */
export function taskHandlers(sql: Sql, changed: (user_id: string) => void): TaskOperations {
  const list: Handler<'listTasks' | 'listMyTasks'> = async (req, res) => {
    // The validator has filled in the contract's defaults for status, sort, order and limit.
    const { cursor, ...query } = req.query as ListOptions & { cursor?: string }
    const after = cursor === undefined ? undefined : decodeCursor(cursor, query.sort)
    const page = await listTasks(sql, userOf(req), { ...query, after })
    if (page.next) {
      const next = new URLSearchParams(req.originalUrl.split('?')[1])
      next.set('cursor', encodeCursor(query.sort, page.next))
      res.links({ next: `${req.path}?${next}` })
    }
    res.json(page.tasks)
  }

  const pruning = idempotencyKeyPruning(sql)
  const create: Handler<'createTask' | 'createMyTask'> = async (req, res) => {
    trimTags(req.body)
    const user_id = userOf(req)
    const locationOf = (id: number) => `${req.path.replace(/\/$/, '')}/${id}`
    const key = req.headers['idempotency-key'] as string | undefined
    if (key === undefined) {
      const task = await createTask(sql, user_id, req.body)
      changed(user_id)
      res.status(201).location(locationOf(task.id))
      return sendTask(res, task)
    }
    pruning()
    const result = await createTaskOnce(sql, user_id, key, fingerprintOf(req.body), req.body, locationOf)
    if (result.outcome === 'reused') {
      throw new Problem('idempotency-key-reused', 'This Idempotency-Key was already used with a different request body; use a new key.')
    }
    if (result.outcome === 'in-use') {
      throw new Problem('idempotency-key-in-use', 'A request with this Idempotency-Key is still running; retry shortly.')
    }
    // The stored response, byte for byte: the same task, body and Location as the first answer.
    res
      .status(201)
      .location(result.location)
      .setHeader('ETag', etagOf(JSON.parse(result.body) as Task))
    if (result.outcome === 'replayed') res.setHeader('Idempotent-Replayed', 'true')
    else changed(user_id)
    res.type('application/json').end(result.body)
  }

  const get: Handler<'getTask' | 'getMyTask'> = async (req, res) => {
    const id = Number(req.params.task_id)
    const task = found(await getTask(sql, userOf(req), id), id)
    const ifNoneMatch = req.headers['if-none-match']
    if (ifNoneMatch !== undefined && !noneMatchHolds(ifNoneMatch, etagOf(task))) {
      res.status(304).setHeader('ETag', etagOf(task))
      return void res.end()
    }
    sendTask(res, task)
  }

  // PUT and PATCH differ only in what the contract requires of the body.
  const update: Handler<'replaceTask' | 'replaceMyTask' | 'updateTask' | 'updateMyTask'> = async (req, res) => {
    trimTags(req.body)
    const id = Number(req.params.task_id)
    const versions = versionsOf(req, id)
    const task = versions?.length === 0 ? undefined : await updateTask(sql, userOf(req), id, req.body, versions)
    sendTask(res, task ? written(task) : await failure(sql, userOf(req), id, versions))
  }

  const complete: Handler<'toggleTaskCompletion' | 'toggleMyTaskCompletion'> = async (req, res) => {
    const id = Number(req.params.task_id)
    const versions = versionsOf(req, id)
    const task = versions?.length === 0 ? undefined : await completeTask(sql, userOf(req), id, req.body?.completed, versions)
    sendTask(res, task ? written(task) : await failure(sql, userOf(req), id, versions))
  }

  const remove: Handler<'deleteTask' | 'deleteMyTask'> = async (req, res) => {
    const id = Number(req.params.task_id)
    const versions = versionsOf(req, id)
    const deleted = versions?.length !== 0 && (await deleteTask(sql, userOf(req), id, versions))
    if (!deleted) await failure(sql, userOf(req), id, versions)
    changed(userOf(req))
    res.status(204).end()
  }

  const count: Handler<'countTasks' | 'countMyTasks'> = async (req, res) => {
    res.json(await countTasks(sql, userOf(req), req.query as Filters))
  }

  const completeAll: Handler<'bulkUpdateTasks' | 'bulkUpdateMyTasks'> = async (req, res) => {
    res.json({ count: counted(userOf(req), await completeTasks(sql, userOf(req), req.query as Filters, req.body.completed)) })
  }

  const deleteAll: Handler<'bulkDeleteTasks' | 'bulkDeleteMyTasks'> = async (req, res) => {
    res.json({ count: counted(userOf(req), await deleteTasks(sql, userOf(req), req.query as Filters)) })
  }

  // A write that changed something: its user's streams hear of it.
  function written<T extends { user_id: string }>(task: T): T {
    changed(task.user_id)
    return task
  }
  function counted(user_id: string, count: number): number {
    if (count > 0) changed(user_id)
    return count
  }

  return {
    countTasks: count,
    countMyTasks: count,
    bulkUpdateTasks: completeAll,
    bulkUpdateMyTasks: completeAll,
    bulkDeleteTasks: deleteAll,
    bulkDeleteMyTasks: deleteAll,
    listTasks: list,
    listMyTasks: list,
    createTask: create,
    createMyTask: create,
    getTask: get,
    getMyTask: get,
    replaceTask: update,
    replaceMyTask: update,
    updateTask: update,
    updateMyTask: update,
    deleteTask: remove,
    deleteMyTask: remove,
    toggleTaskCompletion: complete,
    toggleMyTaskCompletion: complete,
  }
}

function found(task: Task | undefined, id: number): Task {
  if (!task) throw notFound(id)
  return task
}

const notFound = (id: number) => new Problem('not-found', `Task ${id} does not exist.`)

/** A single task, with its ETag. */
function sendTask(res: Response, task: Task): void {
  res.setHeader('ETag', etagOf(task))
  res.json(task)
}

/** The versions of task `id` that the request's If-Match accepts; undefined when any will do. */
function versionsOf(req: Pick<Request, 'headers'>, id: number): Versions {
  const ifMatch = req.headers['if-match']
  if (ifMatch === undefined) return undefined
  const versions = versionsAccepted(ifMatch, id)
  return versions === '*' ? undefined : versions
}

/**
 * Why a write to task `id` wrote nothing: it does not exist (or is another user's: 404 either way,
 * so that If-Match never reveals a task), or it exists in a version If-Match does not accept (412).
 */
async function failure(sql: Sql, user_id: string, id: number, versions: Versions): Promise<never> {
  if (versions === undefined || !(await taskExists(sql, user_id, id))) throw notFound(id)
  throw new Problem(
    'precondition-failed',
    `Task ${id} has changed since it was read (If-Match does not match its ETag); fetch it again, then retry.`,
  )
}

/**
 * Tags as stored: trimmed (the contract has checked each is 1–50 characters and not blank), and unique
 * ignoring case, which JSON Schema cannot say: a duplicate is refused, naming it, never dropped.
 */
function trimTags(body: { tags?: string[] } | undefined): void {
  if (!body?.tags) return
  const seen = new Map<string, string>()
  const errors: FieldError[] = []
  body.tags = body.tags.map((tag, index) => {
    const trimmed = tag.trim()
    const key = trimmed.toLowerCase()
    const first = seen.get(key)
    if (first !== undefined) {
      errors.push({ location: 'body', path: `/tags/${index}`, message: `repeats the tag "${first}" (tags are unique ignoring case)` })
    } else seen.set(key, trimmed)
    return trimmed
  })
  if (errors.length > 0) throw invalid(errors)
}

// The body as the contract read it, keys sorted: the same request, however its JSON was spelled.
function fingerprintOf(body: Record<string, unknown>): string {
  const canonical = JSON.stringify(Object.fromEntries(Object.entries(body).sort(([a], [b]) => (a < b ? -1 : 1))))
  return createHash('sha256').update(canonical).digest('hex')
}

// Expired Idempotency-Keys are deleted by the process that next uses one, at most once an hour.
function idempotencyKeyPruning(sql: Sql): () => void {
  let last = 0
  return () => {
    if (Date.now() - last < 3_600_000) return
    last = Date.now()
    pruneIdempotencyKeys(sql).catch(() => {
      last = 0 // try again with the next key
    })
  }
}

// The cursor is the last row's sort value and id, bound to the sort it was made for.
function encodeCursor(sort: string, { value, id }: Position): string {
  return Buffer.from(JSON.stringify([sort, value, id])).toString('base64url')
}

const timestamp = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
const isTimestamp = (value: unknown) => typeof value === 'string' && timestamp.test(value) && !Number.isNaN(Date.parse(value))

// What a position of each sort may hold: the sort key of the last task of a page.
const validPosition: Record<ListOptions['sort'], (value: unknown) => boolean> = {
  created_at: isTimestamp,
  updated_at: isTimestamp,
  title: (value) => typeof value === 'string' && !value.includes('\0'),
  due_date: (value) => isTimestamp(value) || value === 'infinity' || value === '-infinity',
  priority: (value) => Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 4,
}

function decodeCursor(cursor: string, sort: ListOptions['sort']): Position {
  let decoded: unknown
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {}
  if (Array.isArray(decoded) && decoded.length === 3) {
    const [madeFor, value, id] = decoded as unknown[]
    if (madeFor === sort && validPosition[sort](value) && Number.isSafeInteger(id) && (id as number) > 0) {
      return { value: value as string | number, id: id as number }
    }
  }
  throw invalid([{ location: 'query', path: 'cursor', message: 'is not a cursor from a Link header of this list with the same sort' }])
}
