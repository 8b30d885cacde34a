// The page served at `/`: plain DOM code over the generated SDK, bundled by esbuild (src/web/assets.ts).
import { createTodoClient, etagOf, type ListQuery, nextLink, type Problem, type Task } from '../sdk/client.js'

const pageSize = 20
const tokenKey = 'todo-api.token'

// A create whose answer is lost is sent again under the same Idempotency-Key, never stored twice.
const api = createTodoClient({ token: () => sessionStorage.getItem(tokenKey), idempotentCreates: true })
const state = { next: undefined as string | undefined, generation: 0 }

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
  workspace.hidden = true
  who.hidden = signOut.hidden = true
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
  if (await reload()) byId<HTMLInputElement>('new-title').focus()
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
  let detail = problem.detail
  let first: HTMLElement | undefined
  for (const error of problem.errors ?? []) {
    const { message } = error
    const control = error.location === 'body' ? form?.elements.namedItem(error.path.replace(/^\//, '')) : null
    const output = control instanceof HTMLElement ? document.getElementById(`${control.id}-error`) : null
    if (!(control instanceof HTMLElement) || !output) continue
    control.setAttribute('aria-invalid', 'true')
    output.textContent = message.charAt(0).toUpperCase() + message.slice(1)
    first ??= control
  }
  // "body /title: …" reads as "Title: …".
  detail = detail.replace(/\bbody \/(\w+)/g, '$1')
  notify(detail.charAt(0).toUpperCase() + detail.slice(1), 'error')
  first?.focus()
}

function clearFieldErrors(form: HTMLFormElement): void {
  for (const control of Array.from(form.querySelectorAll('[aria-invalid]'))) control.removeAttribute('aria-invalid')
  for (const output of Array.from(form.querySelectorAll('.field-error'))) output.textContent = ''
}

function currentQuery(): ListQuery {
  const values = new FormData(filters)
  const q = String(values.get('q') ?? '')
  return {
    status: values.get('status') as ListQuery['status'],
    sort: values.get('sort') as ListQuery['sort'],
    order: values.get('order') as ListQuery['order'],
    limit: pageSize,
    ...(q && { q }),
  }
}

/** Shows the first page for the current filters; false when it failed. */
async function reload(): Promise<boolean> {
  const generation = ++state.generation
  list.setAttribute('aria-busy', 'true')
  const result = await call(api.GET('/api/tasks', { params: { query: currentQuery() } }))
  if (generation !== state.generation) return false
  list.setAttribute('aria-busy', 'false')
  if (!result) return false
  list.replaceChildren(...result.data.map(taskItem))
  state.next = nextLink(result.response.headers.get('link'))
  updateSummary()
  return true
}

async function loadMore(): Promise<void> {
  if (!state.next) return
  const generation = state.generation
  // The Link's query as the server wrote it (the filters plus the cursor), sent through the SDK.
  const query = Object.fromEntries(new URL(state.next, location.href).searchParams) as ListQuery
  more.disabled = true
  const result = await call(api.GET('/api/tasks', { params: { query } }))
  more.disabled = false
  if (generation !== state.generation || !result) return
  const items = result.data.map(taskItem)
  list.append(...items)
  state.next = nextLink(result.response.headers.get('link'))
  updateSummary()
  items[0]?.querySelector('input')?.focus()
}

function updateSummary(): void {
  const shown = list.children.length
  const filtered = currentQuery().q !== undefined || currentQuery().status !== 'all'
  summary.textContent =
    shown === 0
      ? filtered
        ? 'No tasks match.'
        : 'No tasks yet: add one above.'
      : `${shown} task${shown === 1 ? '' : 's'} shown${state.next ? ', more below' : ''}.`
  more.hidden = !state.next
}

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
      dates(task),
    ),
    h('div', { class: 'actions' }, edit, remove),
  )
  return item
}

function dates(task: Task): HTMLParagraphElement {
  const time = (iso: string) => h('time', { datetime: iso }, dateFormat.format(new Date(iso)))
  const updated = task.updated_at === task.created_at ? [] : [' · updated ', time(task.updated_at)]
  return h('p', { class: 'meta' }, 'Created ', time(task.created_at), ...updated)
}

function field(id: string, label: string, control: HTMLInputElement | HTMLTextAreaElement): HTMLDivElement {
  control.id = id
  control.setAttribute('aria-describedby', `${id}-error`)
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, h('p', { class: 'field-error', id: `${id}-error` }))
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
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save'), cancel),
  )
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
    const body = { title: title.value, description: description.value === '' ? null : description.value }
    const result = await call(api.PATCH('/api/tasks/{task_id}', { params: { ...shown(task) }, body }), form)
    if (!result) return
    notify(`Saved “${result.data.title}”.`)
    stop(result.data)
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
  // The item stays where it is (even if it no longer matches the filter) so that keyboard focus does not jump.
  Object.assign(task, result.data)
  const item = toggle.closest('li')
  item?.classList.toggle('done', task.completed)
  item?.querySelector('.meta')?.replaceWith(dates(task))
  notify(`${task.completed ? 'Completed' : 'Reopened'} “${task.title}”.`)
  toggle.focus()
}

async function deleteTask(task: Task, item: HTMLLIElement): Promise<void> {
  byId('confirm-text').textContent = `Delete “${task.title}”? This cannot be undone.`
  confirmDialog.returnValue = ''
  confirmDialog.showModal()
  await new Promise((resolve) => confirmDialog.addEventListener('close', resolve, { once: true }))
  if (confirmDialog.returnValue !== 'delete') return
  const result = await call(api.DELETE('/api/tasks/{task_id}', { params: { ...shown(task) } }))
  if (!result) return
  const neighbour = (item.nextElementSibling ?? item.previousElementSibling)?.querySelector('input')
  item.remove()
  updateSummary()
  notify(`Deleted “${task.title}”.`)
  ;(neighbour ?? byId<HTMLInputElement>('new-title')).focus()
}

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
  const result = await call(api.POST('/api/tasks', { body: { title, ...(description && { description }) } }), newTask)
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
more.addEventListener('click', loadMore)

takeTokenFromFragment()
if (sessionStorage.getItem(tokenKey)) void showWorkspace()
else showSignIn()
