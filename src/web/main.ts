// The page served at `/`: plain DOM code over the generated SDK, bundled by esbuild (src/web/assets.ts).
import {
  createTodoClient,
  etagOf,
  type ListQuery,
  nextLink,
  type operations,
  type Problem,
  type Task,
  type TaskEvent,
  TodoApiError,
} from '../sdk/client.js'

const pageSize = 20
// The contract's largest `limit`: a live refresh reads at most this many of the tasks shown.
const maxLimit = 500
const tokenKey = 'todo-api.token'

// A create whose answer is lost is sent again under the same Idempotency-Key, never stored twice.
const api = createTodoClient({ token: () => sessionStorage.getItem(tokenKey), idempotentCreates: true })
const state = {
  next: undefined as string | undefined,
  generation: 0,
  /** The tag filter: chips clicked on tasks, each removable. */
  tags: [] as string[],
  counts: { all: 0, pending: 0, completed: 0, overdue: 0 } as TaskCounts,
  countsGeneration: 0,
}

type TaskCounts = operations['countMyTasks']['responses'][200]['content']['application/json']
type Scope = NonNullable<operations['countMyTasks']['parameters']['query']>
type Organized = Pick<Task, 'priority' | 'tags' | 'due_date' | 'recurrence' | 'remind_at'>

// Exhaustive over the contract's enums (a Record misses no key), so a new value fails the type check here.
const priorities: Record<Task['priority'], string> = { low: 'Low', medium: 'Medium', high: 'High', urgent: 'Urgent' }
const recurrences: Record<NonNullable<Task['recurrence']>, string> = { daily: 'Daily', weekly: 'Weekly', monthly: 'Monthly' }

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
const notice = byId<HTMLDivElement>('notice')
const signin = byId<HTMLElement>('signin')
const workspace = byId<HTMLElement>('workspace')
const who = byId<HTMLParagraphElement>('who')
const signOut = byId<HTMLButtonElement>('sign-out')
const tokenForm = byId<HTMLFormElement>('token-form')
const newTask = byId<HTMLFormElement>('new-task')
const filters = byId<HTMLFormElement>('filters')
const summary = byId<HTMLParagraphElement>('summary')
const list = byId<HTMLUListElement>('list')
const more = byId<HTMLButtonElement>('more')
const confirmDialog = byId<HTMLDialogElement>('confirm')
const left = byId<HTMLParagraphElement>('left')
const completeAll = byId<HTMLButtonElement>('complete-all')
const clearCompleted = byId<HTMLButtonElement>('clear-completed')
const tagFilter = byId<HTMLDivElement>('tag-filter')
const connection = byId<HTMLParagraphElement>('connection')
const reminders = byId<HTMLDivElement>('reminders')
const enableReminders = byId<HTMLButtonElement>('enable-reminders')
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' })

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value)
  node.append(...children)
  return node
}

function notify(message: string, kind: 'info' | 'error' = 'info'): void {
  notice.className = kind
  notice.textContent = message
}

// the token: from the fragment (never sent to the server) or pasted; kept for this tab only

function takeTokenFromFragment(): void {
  const token = new URLSearchParams(location.hash.slice(1)).get('token')
  if (token === null) return
  sessionStorage.setItem(tokenKey, token.trim())
  history.replaceState(history.state, '', location.pathname + location.search)
}

// For display only: the server verifies the token, the page merely shows whose it claims to be.
function userOf(token: string): string | undefined {
  try {
    const payload = (token.split('.')[1] ?? '').replace(/-/g, '+').replace(/_/g, '/')
    const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0))
    const sub = JSON.parse(new TextDecoder().decode(bytes)).sub
    return typeof sub === 'string' ? sub : undefined
  } catch {
    return undefined
  }
}

function showSignIn(message?: string): void {
  sessionStorage.removeItem(tokenKey)
  state.generation++
  stopLive()
  reminders.replaceChildren()
  workspace.hidden = true
  who.hidden = signOut.hidden = enableReminders.hidden = true
  signin.hidden = false
  notify(message ?? '', message ? 'error' : 'info')
  byId<HTMLTextAreaElement>('token').focus()
}

async function showWorkspace(): Promise<void> {
  const user = userOf(sessionStorage.getItem(tokenKey) ?? '')
  who.replaceChildren(...(user ? ['Signed in as ', h('strong', {}, user)] : ['Signed in']))
  who.title = user ?? ''
  signin.hidden = true
  workspace.hidden = who.hidden = signOut.hidden = false
  offerNotifications()
  const loaded = await reload()
  // Unless the token was refused meanwhile (the token form is back).
  if (!workspace.hidden) startLive()
  if (loaded) byId<HTMLInputElement>('new-title').focus()
}

// talking to the API: every call goes through the SDK; failures become messages

type Result<T> = { data?: T; error?: Problem; response: Response }

/** The data of a successful call, or undefined after showing what went wrong (next to `form`'s fields where possible). */
async function call<T>(request: Promise<Result<T>>, form?: HTMLFormElement): Promise<{ data: T; response: Response } | undefined> {
  if (form) clearFieldErrors(form)
  let result: Result<T>
  try {
    result = await request
  } catch {
    notify('The server cannot be reached; check your connection and try again.', 'error')
    return undefined
  }
  if (!result.error) return { data: result.data as T, response: result.response }
  showProblem(result.error, form)
  return undefined
}

function showProblem(problem: Problem, form?: HTMLFormElement): void {
  if (problem.status === 401) {
    showSignIn(`Your token was refused: ${problem.detail} Paste a new one.`)
    return
  }
  if (problem.status === 412) {
    // Every change names the version shown (If-Match): another tab or device changed the task since.
    notify(
      'This task was changed in another tab or on another device, so your change was not saved. The list now shows the latest version: check it, then try again.',
      'error',
    )
    void reload()
    return
  }
  let first: HTMLElement | undefined
  for (const { location, path, message } of problem.errors ?? []) {
    // `/tags/2` is about the one tags field.
    if (location === 'body' && form) first ??= markField(form, path.split('/')[1] ?? '', message)
  }
  // "body /title: …" reads as "Title: …".
  const detail = problem.detail.replace(/\bbody \/(\w+)/g, '$1')
  notify(detail.charAt(0).toUpperCase() + detail.slice(1), 'error')
  first?.focus()
}

/** Shows `message` next to the form's control named `name` (the contract's field name); the control, if found. */
function markField(form: HTMLFormElement, name: string, message: string): HTMLElement | undefined {
  const control = form.elements.namedItem(name)
  const output = control instanceof HTMLElement ? document.getElementById(`${control.id}-error`) : null
  if (!(control instanceof HTMLElement) || !output) return undefined
  control.setAttribute('aria-invalid', 'true')
  // The first failure of a field is shown (a tags list can fail once per tag).
  if (!output.textContent) output.textContent = message.charAt(0).toUpperCase() + message.slice(1)
  return control
}

function clearFieldErrors(form: HTMLFormElement): void {
  for (const control of Array.from(form.querySelectorAll('[aria-invalid]'))) control.removeAttribute('aria-invalid')
  for (const output of Array.from(form.querySelectorAll('.field-error'))) output.textContent = ''
}

/** What the filters select besides completion: the list, the counts and the bulk actions all apply it. */
function scope(): Scope {
  const values = new FormData(filters)
  const q = String(values.get('q') ?? '')
  const priority = values.getAll('priority') as Task['priority'][]
  const due_after = utc(String(values.get('due_after') ?? ''))
  const due_before = utc(String(values.get('due_before') ?? ''))
  return {
    ...(q && { q }),
    ...(priority.length > 0 && { priority }),
    ...(state.tags.length > 0 && { tag: [...state.tags] }),
    ...(due_after && { due_after }),
    ...(due_before && { due_before }),
  }
}

function currentQuery(): ListQuery {
  const values = new FormData(filters)
  return {
    status: values.get('status') as ListQuery['status'],
    sort: values.get('sort') as ListQuery['sort'],
    order: values.get('order') as ListQuery['order'],
    limit: pageSize,
    ...scope(),
  }
}

// datetime-local holds a local time without a zone; the API takes and gives instants (UTC).

/** The instant a datetime-local value names in this browser's time zone, as ISO 8601 UTC; null when empty. */
function utc(local: string): string | null {
  const instant = local ? new Date(local) : undefined
  return instant && !Number.isNaN(instant.getTime()) ? instant.toISOString() : null
}

/** An instant as a datetime-local value in this browser's time zone. */
function localInput(iso: string | null): string {
  if (!iso) return ''
  const d = new Date(iso)
  const two = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}`
}

/** Shows the first page for the current filters; false when it failed. */
function reload(): Promise<boolean> {
  return show(pageSize, (tasks) => list.replaceChildren(...tasks.map(taskItem)))
}

/** The current view read again after changes elsewhere, as many tasks as it shows, updated in place (showTasks). */
function refresh(): Promise<boolean> {
  return show(Math.min(maxLimit, Math.max(pageSize, list.children.length)), showTasks)
}

async function show(limit: number, render: (tasks: Task[]) => void): Promise<boolean> {
  const generation = ++state.generation
  void refreshCounts()
  list.setAttribute('aria-busy', 'true')
  const result = await call(api.GET('/api/tasks', { params: { query: { ...currentQuery(), limit } } }))
  if (generation !== state.generation) return false
  list.setAttribute('aria-busy', 'false')
  if (!result) return false
  render(result.data)
  state.next = nextLink(result.response.headers.get('link'))
  updateSummary()
  return true
}

/**
 * Shows `tasks` in their order, keeping each item that shows the same version of its task (or is
 * being edited) as it is: focus, an edit in progress and the reading position survive a change made
 * elsewhere. An item shown anew gets the task's new ETag, so the next change from here is not a 412.
 */
function showTasks(tasks: Task[]): void {
  const items = new Map(Array.from(list.children, (item) => [item.getAttribute('data-id'), item]))
  const focused = document.activeElement?.id
  const wanted = tasks.map((task) => {
    const item = items.get(String(task.id))
    const before = item && shownTasks.get(item)
    return item && (item.querySelector('form.edit') || (before && etagOf(before) === etagOf(task))) ? item : taskItem(task)
  })
  const kept = new Set(wanted)
  for (const item of items.values()) if (!kept.has(item)) item.remove()
  // Only what moved is moved (a moved element loses focus).
  let cursor = list.firstElementChild
  for (const item of wanted) {
    if (item === cursor) cursor = cursor.nextElementSibling
    else list.insertBefore(item, cursor)
  }
  // An item shown anew has the same ids as the one it replaces: focus goes back to the same control.
  if (focused && document.activeElement === document.body) document.getElementById(focused)?.focus()
}

/** "N items left": the pending tasks in the filters' scope, whatever the status shown. */
async function refreshCounts(): Promise<void> {
  const generation = ++state.countsGeneration
  const result = await call(api.GET('/api/tasks/counts', { params: { query: scope() } }))
  if (!result || generation !== state.countsGeneration) return
  state.counts = result.data
  const { pending, overdue } = result.data
  left.replaceChildren(
    h('strong', {}, String(pending)),
    ` item${pending === 1 ? '' : 's'} left`,
    ...(overdue > 0 ? [' · ', h('span', { class: 'overdue' }, `${overdue} overdue`)] : []),
  )
}

async function loadMore(): Promise<void> {
  if (!state.next) return
  const generation = state.generation
  // The Link's query as the server wrote it (the filters plus the cursor), sent through the SDK;
  // a repeated parameter (priority, tag) stays a list.
  const params = new URL(state.next, location.href).searchParams
  const query = Object.fromEntries([...new Set(params.keys())].map((key) => [key, repeated(params.getAll(key))])) as ListQuery
  more.disabled = true
  // A page's worth, also after a live refresh read more at once.
  const result = await call(api.GET('/api/tasks', { params: { query: { ...query, limit: pageSize } } }))
  more.disabled = false
  if (generation !== state.generation || !result) return
  const items = result.data.map(taskItem)
  list.append(...items)
  state.next = nextLink(result.response.headers.get('link'))
  updateSummary()
  items[0]?.querySelector('input')?.focus()
}

const repeated = (values: string[]) => (values.length === 1 ? values[0] : values)

function updateSummary(): void {
  const shown = list.children.length
  const filtered = Object.keys(scope()).length > 0 || currentQuery().status !== 'all'
  summary.textContent =
    shown === 0
      ? filtered
        ? 'No tasks match.'
        : 'No tasks yet: add one above.'
      : `${shown} task${shown === 1 ? '' : 's'} shown${state.next ? ', more below' : ''}.`
  more.hidden = !state.next
}

/** The task each item of the list shows, as this page last saw it (its ETag goes in If-Match). */
const shownTasks = new WeakMap<Element, Task>()

function taskItem(task: Task): HTMLLIElement {
  const id = `task-${task.id}`
  const toggle = h('input', { type: 'checkbox', id: `${id}-done` })
  toggle.checked = task.completed
  toggle.addEventListener('change', () => setCompleted(task, toggle))
  const edit = h('button', { type: 'button', class: 'quiet' }, 'Edit', h('span', { class: 'visually-hidden' }, ` “${task.title}”`))
  edit.addEventListener('click', () => startEditing(task, item))
  const remove = h(
    'button',
    { type: 'button', class: 'quiet danger-text' },
    'Delete',
    h('span', { class: 'visually-hidden' }, ` “${task.title}”`),
  )
  remove.addEventListener('click', () => deleteTask(task, item))
  const item = h(
    'li',
    { class: task.completed ? 'task done' : 'task', 'data-id': String(task.id) },
    toggle,
    h(
      'div',
      { class: 'body' },
      h('label', { for: toggle.id, class: 'title' }, task.title),
      ...(task.description ? [h('p', { class: 'description' }, task.description)] : []),
      labels(task),
      ...schedule(task),
      dates(task),
    ),
    h('div', { class: 'actions' }, edit, remove),
  )
  shownTasks.set(item, task)
  return item
}

/** The priority badge and the tags, each tag a button that filters the list by it. */
function labels(task: Task): HTMLDivElement {
  const badge = h(
    'span',
    { class: `badge priority-${task.priority}` },
    priorities[task.priority],
    h('span', { class: 'visually-hidden' }, ' priority'),
  )
  const chips = task.tags.map((tag) => {
    const chip = h('button', { type: 'button', class: 'chip' }, h('span', { class: 'visually-hidden' }, 'Show tasks tagged '), tag)
    chip.addEventListener('click', () => filterByTag(tag))
    return chip
  })
  return h('div', { class: 'labels' }, badge, ...chips)
}

function isOverdue(task: Task): boolean {
  return !task.completed && task.due_date !== null && new Date(task.due_date).getTime() < Date.now()
}

function schedule(task: Task): HTMLParagraphElement[] {
  const time = (iso: string) => h('time', { datetime: iso }, dateFormat.format(new Date(iso)))
  const parts: (Node | string)[] = []
  if (task.due_date) {
    parts.push(
      isOverdue(task)
        ? h('strong', { class: 'overdue' }, 'Overdue: due ', time(task.due_date))
        : h('span', {}, 'Due ', time(task.due_date)),
    )
  }
  if (task.recurrence) parts.push(h('span', {}, `Repeats ${recurrences[task.recurrence].toLowerCase()}`))
  if (task.remind_at) parts.push(h('span', {}, 'Reminder ', time(task.remind_at)))
  return parts.length === 0 ? [] : [h('p', { class: 'schedule' }, ...parts)]
}

function dates(task: Task): HTMLParagraphElement {
  const time = (iso: string) => h('time', { datetime: iso }, dateFormat.format(new Date(iso)))
  const updated = task.updated_at === task.created_at ? [] : [' · updated ', time(task.updated_at)]
  return h('p', { class: 'meta' }, 'Created ', time(task.created_at), ...updated)
}

function field(
  id: string,
  label: string | (Node | string)[],
  control: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement,
  className = '',
): HTMLDivElement {
  control.id = id
  control.setAttribute('aria-describedby', `${id}-error`)
  return h(
    'div',
    { class: `field ${className}`.trim() },
    h('label', { for: id }, ...(typeof label === 'string' ? [label] : label)),
    control,
    h('p', { class: 'field-error', id: `${id}-error` }),
  )
}

function select(name: string, options: Record<string, string>, value: string): HTMLSelectElement {
  const control = h('select', { name })
  // The given value is also the default, so that the form's reset() returns to it.
  for (const [key, label] of Object.entries(options))
    control.append(h('option', { value: key, ...(key === value && { selected: '' }) }, label))
  return control
}

/** Priority, tags, due date, repetition and reminder: the fields of a new task (`task` absent) or of one being edited. */
function organizeFields(prefix: string, task?: Task): HTMLDivElement {
  const tags = h('input', { name: 'tags', autocomplete: 'off', placeholder: 'e.g. work, errands' })
  tags.value = task?.tags.join(', ') ?? ''
  const moment = (name: string, value: string | null) => {
    const control = h('input', { name, type: 'datetime-local' })
    control.value = localInput(value)
    return control
  }
  const optional = (text: string) => [text, ' ', h('span', { class: 'optional' }, '(optional)')]
  return h(
    'div',
    { class: 'details' },
    field(`${prefix}-priority`, 'Priority', select('priority', priorities, task?.priority ?? 'medium'), 'priority'),
    field(`${prefix}-tags`, ['Tags ', h('span', { class: 'optional' }, '(comma-separated)')], tags, 'tags'),
    field(`${prefix}-due_date`, optional('Due'), moment('due_date', task?.due_date ?? null), 'due'),
    field(`${prefix}-recurrence`, 'Repeats', select('recurrence', { '': 'Never', ...recurrences }, task?.recurrence ?? ''), 'repeats'),
    field(`${prefix}-remind_at`, optional('Remind me'), moment('remind_at', task?.remind_at ?? null), 'remind'),
  )
}

/** The organize fields of `form` as the contract spells them (times in UTC, tags split at commas). */
function organizeValues(form: HTMLFormElement): Organized {
  const value = (name: string) => (form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement).value
  return {
    priority: value('priority') as Task['priority'],
    tags: value('tags')
      .split(',')
      .map((tag) => tag.trim())
      .filter((tag) => tag !== ''),
    due_date: utc(value('due_date')),
    recurrence: (value('recurrence') || null) as Task['recurrence'],
    remind_at: utc(value('remind_at')),
  }
}

/** A repeating task needs a due date (the contract answers 422 otherwise): said next to the field, nothing sent. */
function repeatsWithoutDueDate(form: HTMLFormElement, values: Organized): boolean {
  if (values.recurrence === null || values.due_date !== null) return false
  clearFieldErrors(form)
  const control = markField(form, 'recurrence', 'A repeating task needs a due date: set one, or choose “Never”.')
  notify('Repeats: a repeating task needs a due date.', 'error')
  control?.focus()
  return true
}

/** The task as this page shows it: a change applies only if nobody changed the task since (else 412). */
function shown(task: Task) {
  return { path: { task_id: task.id }, header: { 'If-Match': etagOf(task) } }
}

function startEditing(task: Task, item: HTMLLIElement): void {
  const title = h('input', { name: 'title', required: '', maxlength: '200', autocomplete: 'off' })
  title.value = task.title
  const description = h('textarea', { name: 'description', rows: '2', maxlength: '1000' })
  description.value = task.description ?? ''
  const cancel = h('button', { type: 'button', class: 'quiet' }, 'Cancel')
  const form = h(
    'form',
    { class: 'edit', 'aria-label': `Edit “${task.title}”` },
    field(`task-${task.id}-title`, 'Title', title),
    field(`task-${task.id}-description`, 'Description', description),
    organizeFields(`task-${task.id}`, task),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save'), cancel),
  )
  const before = organizeValues(form)
  const stop = (shown: Task) => {
    const fresh = taskItem(shown)
    item.replaceWith(fresh)
    fresh.querySelector<HTMLButtonElement>('.actions button')?.focus()
  }
  cancel.addEventListener('click', () => stop(task))
  form.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') stop(task)
  })
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const after = organizeValues(form)
    if (repeatsWithoutDueDate(form, after)) return
    // Only what changed: setting the due date or the recurrence again would restart the series.
    const changed = Object.fromEntries(
      Object.entries(after).filter(([key, value]) => JSON.stringify(value) !== JSON.stringify(before[key as keyof Organized])),
    ) as Partial<Organized>
    const body = { title: title.value, description: description.value === '' ? null : description.value, ...changed }
    const result = await call(api.PATCH('/api/tasks/{task_id}', { params: { ...shown(task) }, body }), form)
    if (!result) return
    notify(`Saved “${result.data.title}”.`)
    stop(result.data)
    void refreshCounts()
  })
  item.replaceChildren(form)
  title.focus()
}

async function setCompleted(task: Task, toggle: HTMLInputElement): Promise<void> {
  const completed = toggle.checked
  toggle.disabled = true
  const result = await call(api.PATCH('/api/tasks/{task_id}/complete', { params: { ...shown(task) }, body: { completed } }))
  toggle.disabled = false
  if (!result) {
    toggle.checked = !completed
    return
  }
  const { next_occurrence: next, ...done } = result.data
  if (next) {
    // A repeating task rolled over: the list shows its next occurrence, focus stays on this one if shown.
    await reload()
    const due = next.due_date ? dateFormat.format(new Date(next.due_date)) : 'no due date'
    notify(`Completed “${task.title}”. Next: ${due}.`)
    ;(document.getElementById(toggle.id) ?? document.getElementById(`task-${next.id}-done`) ?? byId('new-title')).focus()
    return
  }
  // The item stays where it is (even if it no longer matches the filter) so that keyboard focus does not jump.
  Object.assign(task, done)
  const item = toggle.closest('li')
  item?.classList.toggle('done', task.completed)
  item?.querySelector('.schedule')?.replaceWith(...schedule(task))
  item?.querySelector('.meta')?.replaceWith(dates(task))
  notify(`${task.completed ? 'Completed' : 'Reopened'} “${task.title}”.`)
  toggle.focus()
  void refreshCounts()
}

/** Asks in the page's dialog (focus starts on Cancel; Escape cancels); true when the person chose Delete. */
async function confirmed(question: string): Promise<boolean> {
  byId('confirm-text').textContent = question
  confirmDialog.returnValue = ''
  confirmDialog.showModal()
  await new Promise((resolve) => confirmDialog.addEventListener('close', resolve, { once: true }))
  return confirmDialog.returnValue === 'delete'
}

async function deleteTask(task: Task, item: HTMLLIElement): Promise<void> {
  if (!(await confirmed(`Delete “${task.title}”? This cannot be undone.`))) return
  const result = await call(api.DELETE('/api/tasks/{task_id}', { params: { ...shown(task) } }))
  if (!result) return
  const neighbour = (item.nextElementSibling ?? item.previousElementSibling)?.querySelector('input')
  item.remove()
  updateSummary()
  void refreshCounts()
  notify(`Deleted “${task.title}”.`)
  ;(neighbour ?? byId<HTMLInputElement>('new-title')).focus()
}

// live updates: the SDK's event stream while signed in; the list catches up with changes made elsewhere

let live: AbortController | undefined
const unapplied: TaskEvent[] = []
let catchingUp: ReturnType<typeof setTimeout> | undefined
let listTurn: Promise<unknown> = Promise.resolve()

/** "Load more" and live catch-ups take turns: each starts from the list the other left. */
function serially(work: () => Promise<unknown>): void {
  // A turn that failed (reported as unhandled already) does not hold up the next.
  listTurn = listTurn.catch(() => {}).then(work)
}

function startLive(): void {
  stopLive()
  const controller = new AbortController()
  live = controller
  let first = true
  void (async () => {
    try {
      for await (const event of api.subscribe({
        signal: controller.signal,
        onOpen: () => {
          connection.hidden = true
          // A change between reading the list and the stream opening has no event here.
          if (first) changed({ type: 'reload', id: '' })
          first = false
        },
        onRetry: () => {
          connection.hidden = false
        },
      })) {
        if (event.type === 'reminder') remind(event.task)
        else changed(event)
      }
    } catch (error) {
      connection.hidden = true
      // 401: back to the token form with the reason.
      if (error instanceof TodoApiError) showProblem(error.problem)
      else notify('Live updates stopped; reload the page to see changes made elsewhere.', 'error')
    }
  })()
}

function stopLive(): void {
  live?.abort()
  live = undefined
  clearTimeout(catchingUp)
  unapplied.length = 0
  connection.hidden = true
}

/** A change to the user's tasks: the list catches up shortly after (once for a burst of changes). */
function changed(event: TaskEvent): void {
  unapplied.push(event)
  clearTimeout(catchingUp)
  catchingUp = setTimeout(() => serially(catchUp), 100)
}

// This page's own changes come back as events too: the list shows them already, so nothing is read again.
async function catchUp(): Promise<void> {
  const events = unapplied.splice(0)
  if (events.some((event) => !shows(event))) await refresh()
  // A task deleted elsewhere that this page did not show may still have been counted.
  else if (events.some((event) => event.type === 'task.deleted')) await refreshCounts()
}

/** Whether the list already shows the outcome of `event`. */
function shows(event: TaskEvent): boolean {
  if (event.type === 'reload') return false
  const item = list.querySelector(`li[data-id="${event.type === 'task.deleted' ? event.task_id : event.task.id}"]`)
  if (event.type === 'task.deleted') return item === null
  const task = item ? shownTasks.get(item) : undefined
  return task !== undefined && etagOf(task) === etagOf(event.task)
}

// reminders: a notification when the person allowed them, else a notice in the page until dismissed

function offerNotifications(): void {
  enableReminders.hidden = !('Notification' in window) || Notification.permission !== 'default'
}

function remind(task: Task): void {
  const due = task.due_date ? `Due ${dateFormat.format(new Date(task.due_date))}` : ''
  if ('Notification' in window && Notification.permission === 'granted') {
    try {
      const shown = new Notification(`Reminder: ${task.title}`, { body: due, tag: `task-${task.id}` })
      shown.addEventListener('click', () => window.focus())
      return
    } catch {
      // Chrome on Android shows notifications only through a service worker: the page says it instead.
    }
  }
  const dismiss = h(
    'button',
    { type: 'button', class: 'quiet' },
    'Dismiss',
    h('span', { class: 'visually-hidden' }, ` the reminder “${task.title}”`),
  )
  const card = h(
    'div',
    { class: 'reminder', 'data-id': String(task.id) },
    h('div', {}, h('p', {}, h('strong', {}, 'Reminder: '), task.title), ...(due ? [h('p', { class: 'hint' }, due)] : [])),
    dismiss,
  )
  dismiss.addEventListener('click', () => {
    const next = card.nextElementSibling ?? card.previousElementSibling
    card.remove()
    ;(next?.querySelector('button') ?? byId<HTMLInputElement>('new-title')).focus()
  })
  reminders.querySelector(`[data-id="${task.id}"]`)?.remove()
  reminders.append(card)
}

// the tag filter: a chip on a task adds its tag; each active tag is a chip that removes it

const tagged = () => `tasks tagged ${state.tags.map((t) => `“${t}”`).join(' and ')}`

function filterByTag(tag: string): void {
  if (!state.tags.some((t) => t.toLowerCase() === tag.toLowerCase())) state.tags.push(tag)
  showTagFilter()
  notify(`Showing ${tagged()}.`)
  void reload()
  tagFilter.querySelector<HTMLButtonElement>(`button[data-tag="${CSS.escape(tag.toLowerCase())}"]`)?.focus()
}

function showTagFilter(): void {
  tagFilter.hidden = state.tags.length === 0
  const chips = state.tags.map((tag) => {
    const chip = h(
      'button',
      { type: 'button', class: 'chip active', 'data-tag': tag.toLowerCase() },
      h('span', { class: 'visually-hidden' }, 'Remove the filter by tag '),
      tag,
      h('span', { 'aria-hidden': 'true', class: 'remove' }, '×'),
    )
    chip.addEventListener('click', () => {
      const index = state.tags.indexOf(tag)
      state.tags.splice(index, 1)
      showTagFilter()
      notify(`Removed the filter by tag “${tag}”${state.tags.length > 0 ? `; showing ${tagged()}` : ''}.`)
      void reload()
      const buttons = tagFilter.querySelectorAll('button')
      ;(buttons[Math.min(index, buttons.length - 1)] ?? byId<HTMLInputElement>('q')).focus()
    })
    return h('li', {}, chip)
  })
  tagFilter.querySelector('ul')?.replaceChildren(...chips)
}

// the bulk actions, on every task in the filters' scope (not only the page shown)

completeAll.addEventListener('click', async () => {
  const result = await call(api.PATCH('/api/tasks', { params: { query: { ...scope(), status: 'pending' } }, body: { completed: true } }))
  if (!result) return
  const { count } = result.data
  await reload()
  notify(count === 0 ? 'Every task here is already complete.' : `Marked ${count} task${count === 1 ? '' : 's'} complete.`)
})

clearCompleted.addEventListener('click', async () => {
  const { completed } = state.counts
  if (completed === 0) {
    notify('There are no completed tasks to clear.')
    return
  }
  const which = Object.keys(scope()).length > 0 ? ' matching the filters' : ''
  if (!(await confirmed(`Delete the ${completed} completed task${completed === 1 ? '' : 's'}${which}? This cannot be undone.`))) return
  const result = await call(api.DELETE('/api/tasks', { params: { query: { ...scope(), status: 'completed' } } }))
  if (!result) return
  const { count } = result.data
  await reload()
  notify(`Deleted ${count} completed task${count === 1 ? '' : 's'}.`)
  clearCompleted.focus()
})

tokenForm.addEventListener('submit', (event) => {
  event.preventDefault()
  const token = String(new FormData(tokenForm).get('token') ?? '')
    .trim()
    .replace(/^Bearer\s+/i, '')
  if (!token) return
  sessionStorage.setItem(tokenKey, token)
  tokenForm.reset()
  notify('')
  void showWorkspace()
})

signOut.addEventListener('click', () => showSignIn())

newTask.addEventListener('submit', async (event) => {
  event.preventDefault()
  const values = new FormData(newTask)
  const title = String(values.get('title') ?? '')
  const description = String(values.get('description') ?? '')
  const organized = organizeValues(newTask)
  if (repeatsWithoutDueDate(newTask, organized)) return
  const result = await call(api.POST('/api/tasks', { body: { title, ...(description && { description }), ...organized } }), newTask)
  if (!result) return
  newTask.reset()
  notify(`Added “${result.data.title}”.`)
  await reload()
  byId<HTMLInputElement>('new-title').focus()
})

let typing: ReturnType<typeof setTimeout> | undefined
filters.addEventListener('input', (event) => {
  clearTimeout(typing)
  typing = setTimeout(reload, (event.target as HTMLElement).id === 'q' ? 250 : 0)
})
filters.addEventListener('submit', (event) => {
  event.preventDefault()
  clearTimeout(typing)
  void reload()
})
more.addEventListener('click', () => serially(loadMore))
enableReminders.addEventListener('click', async () => {
  const permission = await Notification.requestPermission()
  offerNotifications()
  notify(permission === 'granted' ? 'Reminders will show as notifications.' : 'Reminders will show in this page.')
  byId<HTMLInputElement>('new-title').focus()
})

byId('new-details').replaceWith(organizeFields('new'))
byId('priority-filter').append(
  ...Object.entries(priorities).map(([value, label]) =>
    h('label', { class: 'toggle' }, h('input', { type: 'checkbox', name: 'priority', value }), label),
  ),
)

takeTokenFromFragment()
if (sessionStorage.getItem(tokenKey)) void showWorkspace()
else showSignIn()
