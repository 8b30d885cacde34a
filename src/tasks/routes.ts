import { userOf } from '../auth.js'
import type { Sql } from '../db.js'
import type { Handler, Handlers } from '../operations.js'
import { invalid, Problem } from '../problems.js'
import {
  completeTask,
  createTask,
  deleteTask,
  getTask,
  type ListOptions,
  listTasks,
  type Position,
  type Task,
  updateTask,
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
>

/** One handler per task operation; the path and token spellings share each function. */
export function taskHandlers(sql: Sql): TaskOperations {
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

  const create: Handler<'createTask' | 'createMyTask'> = async (req, res) => {
    const task = await createTask(sql, userOf(req), req.body)
    res
      .status(201)
      .location(`${req.path.replace(/\/$/, '')}/${task.id}`)
      .json(task)
  }

  const get: Handler<'getTask' | 'getMyTask'> = async (req, res) => {
    const id = Number(req.params.task_id)
    res.json(found(await getTask(sql, userOf(req), id), id))
  }

  // PUT and PATCH differ only in what the contract requires of the body.
  const update: Handler<'replaceTask' | 'replaceMyTask' | 'updateTask' | 'updateMyTask'> = async (req, res) => {
    const id = Number(req.params.task_id)
    res.json(found(await updateTask(sql, userOf(req), id, req.body), id))
  }

  const complete: Handler<'toggleTaskCompletion' | 'toggleMyTaskCompletion'> = async (req, res) => {
    const id = Number(req.params.task_id)
    res.json(found(await completeTask(sql, userOf(req), id, req.body?.completed), id))
  }

  const remove: Handler<'deleteTask' | 'deleteMyTask'> = async (req, res) => {
    const id = Number(req.params.task_id)
    if (!(await deleteTask(sql, userOf(req), id))) throw notFound(id)
    res.status(204).end()
  }

  return {
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

// The cursor is the last row's sort value and id, bound to the sort it was made for.
function encodeCursor(sort: string, { value, id }: Position): string {
  return Buffer.from(JSON.stringify([sort, value, id])).toString('base64url')
}

const timestamp = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

function decodeCursor(cursor: string, sort: string): Position {
  let decoded: unknown
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {}
  if (Array.isArray(decoded) && decoded.length === 3) {
    const [madeFor, value, id] = decoded as unknown[]
    const validValue =
      typeof value === 'string' && (sort === 'title' ? !value.includes('\0') : timestamp.test(value) && !Number.isNaN(Date.parse(value)))
    if (madeFor === sort && validValue && Number.isSafeInteger(id) && (id as number) > 0) return { value, id: id as number }
  }
  throw invalid([{ location: 'query', path: 'cursor', message: 'is not a cursor from a Link header of this list with the same sort' }])
}
