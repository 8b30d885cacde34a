// The web page at `/` (issue 3) in a real headless Chromium against the real server and PostgreSQL:
// the token from the fragment, every task action through the page, errors, keyboard, phone width,
// a second user, organizing tasks (issue 8), and live updates between two tabs with reminders
// (issue 9). Screenshots go to test-artifacts/screenshots/ (git-ignored).
// The browser runs in Europe/Berlin (UTC+1 in winter), so that local times and UTC differ.
import { existsSync, mkdirSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals'
import { SignJWT } from 'jose'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import type { components } from '../generated/api.js'
import { newUser, secret, startServer, type TestServer, tokenFor } from './support/server.js'

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const screenshots = fileURLToPath(new URL('../test-artifacts/screenshots/', import.meta.url))
const haveChromium = existsSync(chromiumPath)
if (!haveChromium) {
  console.warn(
    `tests/web.browser.test.ts: SKIPPED, no Chromium at ${chromiumPath}. Install it (apt-get install -y chromium) or set CHROMIUM_PATH.`,
  )
}
const describeInBrowser = haveChromium ? describe : describe.skip

let server: TestServer
let browser: Browser
const contexts: BrowserContext[] = []

beforeAll(async () => {
  if (!haveChromium) return
  mkdirSync(screenshots, { recursive: true })
  server = await startServer()
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  })
})
afterEach(async () => {
  await Promise.all(contexts.splice(0).map((context) => context.close()))
})
afterAll(async () => {
  await browser?.close()
  await server?.close()
})

interface Opened {
  page: Page
  /** Every request the page made: its URL as sent (no fragment), its Authorization header, method and body. */
  requests: { url: string; authorization: string | undefined; method: string; body: string | null }[]
  /** Uncaught exceptions and Content-Security-Policy violations. */
  failures: string[]
}

async function newContext(viewport = { width: 1024, height: 800 }): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport, timezoneId: 'Europe/Berlin', locale: 'en-US' })
  contexts.push(context)
  context.setDefaultTimeout(5000)
  return context
}

async function open(fragment = '', viewport?: { width: number; height: number }, context?: BrowserContext): Promise<Opened> {
  const page = await (context ?? (await newContext(viewport))).newPage()
  const opened: Opened = { page, requests: [], failures: [] }
  page.on('request', (request) => {
    opened.requests.push({
      url: request.url().split('#')[0] ?? '',
      authorization: request.headers().authorization,
      method: request.method(),
      body: request.postData(),
    })
  })
  page.on('pageerror', (error) => opened.failures.push(error.message))
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) opened.failures.push(message.text())
  })
  await page.goto(`${server.url}/${fragment}`)
  return opened
}

async function signedIn(viewport?: { width: number; height: number }) {
  const user_id = newUser()
  const token = await tokenFor(user_id)
  const opened = await open(`#token=${token}`, viewport)
  await opened.page.locator('#workspace').waitFor()
  return { user_id, token, ...opened }
}

/** Polls until `read()` equals `expected` (the page answers asynchronously), then asserts it. */
async function until<T>(read: () => Promise<T>, expected: T, timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout
  let actual = await read()
  while (!isDeepStrictEqual(actual, expected) && Date.now() < deadline) {
    await sleep(40)
    actual = await read()
  }
  expect(actual).toEqual(expected)
}

const titles = (page: Page) => () => page.locator('#list .title').allTextContents()

function rows(user_id: string) {
  return () =>
    server.sql<{ title: string; description: string | null; completed: boolean }[]>`
      select title, description, completed from tasks where user_id = ${user_id} order by id`.then((r) => [...r])
}

/** The organize fields of the user's tasks, times as ISO strings in UTC. */
function organized(user_id: string) {
  return () =>
    server.sql<
      {
        title: string
        completed: boolean
        priority: string
        tags: string[]
        due_date: Date | string | null
        recurrence: string | null
        remind_at: Date | string | null
      }[]
    >`select title, completed, priority, tags, due_date, recurrence, remind_at from tasks where user_id = ${user_id} order by id`.then(
      (r) => r.map((t) => ({ ...t, due_date: utc(t.due_date), remind_at: utc(t.remind_at) })),
    )
}

function utc(instant: Date | string | null): string | null {
  return instant === null ? null : new Date(instant).toISOString()
}

/** Tasks written through the API (not the page), then shown by reloading the page. */
async function seed(page: Page, token: string, tasks: components['schemas']['TaskCreate'][]) {
  const api = server.client(token)
  for (const body of tasks) {
    const { error } = await api.POST('/api/tasks', { body })
    if (error) throw new Error(error.detail)
  }
  await page.reload()
  await page.locator('#workspace').waitFor()
  await until(async () => (await page.locator('#list .title').count()) === tasks.length, true)
}

const left = (page: Page) => () => page.locator('#left').textContent()
// Intl separates the time from AM/PM with a narrow no-break space: compared as a space.
const notice = (page: Page) => () =>
  page
    .locator('#notice')
    .textContent()
    .then((t) => t?.replace(/\s/g, ' '))
const times = (page: Page, title: string) => () =>
  page
    .locator('#list li', { has: page.getByText(title, { exact: true }) })
    .locator('.schedule time')
    .allTextContents()
    .then((all) => all.map((t) => t.replace(/\s/g, ' ')))

async function create(page: Page, title: string, description = '') {
  const before = await page.locator('#list .title').count()
  await page.fill('#new-title', title)
  await page.fill('#new-description', description)
  await page.click('#new-task button[type=submit]')
  await until(async () => (await page.locator('#list .title').count()) > before, true)
}

/** How far the page scrolls sideways (0: it fits the width). */
const sideways = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)

const shoot = (page: Page, name: string) => page.screenshot({ path: `${screenshots}${name}.png`, fullPage: true })

// The page updates after its requests resolve, so every DOM assertion waits (until) rather than
// reading once: the database can already show a change the page has not rendered yet.
describeInBrowser('the web page at / in headless Chromium', () => {
  test('when opened with #token=…, then the fragment leaves the address bar, the token travels only in the Authorization header, and a reload keeps the session', async () => {
    const { page, token, user_id, requests, failures } = await signedIn()
    expect(page.url()).toBe(`${server.url}/`)
    expect(await page.evaluate(() => location.href)).not.toContain(token)
    await until(() => page.locator('#who').textContent(), `Signed in as ${user_id}`)

    await page.reload()
    await page.locator('#workspace').waitFor()
    await create(page, 'Survives a reload')

    expect(requests.length).toBeGreaterThan(3)
    for (const { url } of requests) expect(url).not.toContain(token)
    const apiCalls = requests.filter((r) => new URL(r.url).pathname.startsWith('/api/'))
    expect(apiCalls.length).toBeGreaterThanOrEqual(3)
    for (const call of apiCalls) expect(call.authorization).toBe(`Bearer ${token}`)
    // Nothing but the page's own origin: no CDN, no font or analytics host.
    expect(new Set(requests.map((r) => new URL(r.url).origin))).toEqual(new Set([server.url]))
    expect(failures).toEqual([])

    await page.getByRole('button', { name: 'Forget token' }).click()
    await page.locator('#signin').waitFor()
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0)
    await page.reload()
    await page.locator('#signin').waitFor()
    await shoot(page, '01-sign-in')

    await page.getByLabel('Bearer token (JWT)').fill(`Bearer ${token}`) // as copied from a request's header
    await page.getByRole('button', { name: 'Continue' }).click()
    await until(titles(page), ['Survives a reload'])
  })

  test('when a token is refused (expired), then the page returns to the token form with the reason', async () => {
    const expired = await new SignJWT({ sub: newUser() })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt('2 hours ago')
      .setExpirationTime('1 hour ago')
      .sign(new TextEncoder().encode(secret))
    const { page } = await open(`#token=${expired}`)
    await page.locator('#signin').waitFor()
    await until(() => page.locator('#notice').textContent(), 'Your token was refused: The token has expired. Paste a new one.')
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0)
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('token')
    await shoot(page, '02-token-refused')
  })

  test('when a user creates, filters, searches, sorts, edits, completes and deletes tasks, then the list and the database follow', async () => {
    const { page, user_id, failures } = await signedIn()
    await until(() => page.locator('#summary').textContent(), 'No tasks yet: add one above.')
    await create(page, 'Buy milk', 'Two litres of OAT milk')
    await create(page, 'Write report')
    await create(page, 'Call Alice')
    await create(page, '<img src=x onerror="window.pwned=1">')
    await until(() => page.locator('#notice').textContent(), 'Added “<img src=x onerror="window.pwned=1">”.')
    await until(titles(page), ['<img src=x onerror="window.pwned=1">', 'Call Alice', 'Write report', 'Buy milk'])
    expect(await page.evaluate(() => (window as { pwned?: number }).pwned)).toBeUndefined()

    // Sort
    await page.selectOption('#sort', 'title')
    await page.selectOption('#order', 'asc')
    await until(titles(page), ['<img src=x onerror="window.pwned=1">', 'Buy milk', 'Call Alice', 'Write report'])
    await page.selectOption('#order', 'desc')
    await until(titles(page), ['Write report', 'Call Alice', 'Buy milk', '<img src=x onerror="window.pwned=1">'])

    // Search: title or description, case-insensitive
    await page.fill('#q', 'oat')
    await until(titles(page), ['Buy milk'])
    await page.fill('#q', 'REPORT')
    await until(titles(page), ['Write report'])
    await page.fill('#q', 'nothing like this')
    await until(() => page.locator('#summary').textContent(), 'No tasks match.')
    await page.fill('#q', '')
    await until(titles(page), ['Write report', 'Call Alice', 'Buy milk', '<img src=x onerror="window.pwned=1">'])

    // Complete, then filter by status
    await page.getByRole('checkbox', { name: 'Write report' }).check()
    await until(async () => (await rows(user_id)()).find((r) => r.title === 'Write report')?.completed, true)
    await until(() => page.locator('#notice').textContent(), 'Completed “Write report”.')
    await page.selectOption('#status', 'completed')
    await until(titles(page), ['Write report'])
    await page.selectOption('#status', 'pending')
    await until(titles(page), ['Call Alice', 'Buy milk', '<img src=x onerror="window.pwned=1">'])
    await page.selectOption('#status', 'all')
    await page.getByRole('checkbox', { name: 'Write report' }).uncheck()
    await until(async () => (await rows(user_id)()).find((r) => r.title === 'Write report')?.completed, false)

    // Edit inline
    await page.getByRole('button', { name: 'Edit “Call Alice”' }).click()
    const form = page.getByRole('form', { name: 'Edit “Call Alice”' })
    await form.getByLabel('Title').fill('Call Alice back')
    await form.getByLabel('Description').fill('About the offsite')
    await shoot(page, '03-editing')
    await form.getByRole('button', { name: 'Save' }).click()
    await until(titles(page), ['Write report', 'Call Alice back', 'Buy milk', '<img src=x onerror="window.pwned=1">'])
    expect((await rows(user_id)()).find((r) => r.title === 'Call Alice back')).toEqual({
      title: 'Call Alice back',
      description: 'About the offsite',
      completed: false,
    })
    await page.getByRole('checkbox', { name: 'Buy milk' }).check()
    await until(() => page.locator('#notice').textContent(), 'Completed “Buy milk”.')
    await shoot(page, '04-tasks')

    // Delete: the dialog's Cancel keeps the task, its Delete removes it
    await page.getByRole('button', { name: 'Delete “Write report”' }).click()
    await page.getByRole('dialog').waitFor()
    await shoot(page, '05-confirm-delete')
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click()
    expect((await rows(user_id)()).map((r) => r.title)).toContain('Write report')
    await page.getByRole('button', { name: 'Delete “Write report”' }).click()
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click()
    await until(titles(page), ['Call Alice back', 'Buy milk', '<img src=x onerror="window.pwned=1">'])
    expect((await rows(user_id)()).map((r) => r.title)).toEqual(['Buy milk', 'Call Alice back', '<img src=x onerror="window.pwned=1">'])
    expect(failures).toEqual([])
  }, 30_000)

  test('when there are more tasks than a page, then "Load more" follows the Link header until the last page, keeping repeated filters', async () => {
    const { page, user_id, requests } = await signedIn()
    await server.sql`
      insert into tasks (user_id, title, priority)
      select ${user_id}, 'Task ' || lpad(n::text, 2, '0'), case when n > 45 then 'low' when n % 2 = 0 then 'urgent' else 'high' end
      from generate_series(1, 50) as n`
    await page.selectOption('#sort', 'title')
    await page.selectOption('#order', 'asc')
    await page.getByRole('checkbox', { name: 'High', exact: true }).check()
    await page.getByRole('checkbox', { name: 'Urgent', exact: true }).check()
    const expected = Array.from({ length: 45 }, (_, i) => `Task ${String(i + 1).padStart(2, '0')}`)
    await until(titles(page), expected.slice(0, 20))
    await until(() => page.locator('#summary').textContent(), '20 tasks shown, more below.')

    await page.getByRole('button', { name: 'Load more' }).click()
    await until(titles(page), expected.slice(0, 40))
    // Focus lands on the first task of the new page, not back at the top.
    const firstOfPage = await page.locator('#list li').nth(20).locator('input').getAttribute('id')
    await until(() => page.evaluate(() => document.activeElement?.id), firstOfPage ?? undefined)
    await page.getByRole('button', { name: 'Load more' }).click()
    await until(titles(page), expected)
    await until(() => page.getByRole('button', { name: 'Load more' }).isVisible(), false)
    await until(() => page.locator('#summary').textContent(), '45 tasks shown.')
    const pages = requests.filter((r) => new URL(r.url).searchParams.has('cursor'))
    expect(pages).toHaveLength(2)
    for (const { url } of pages) {
      expect(Object.fromEntries(new URL(url).searchParams)).toMatchObject({ sort: 'title', order: 'asc', limit: '20' })
      expect(new URL(url).searchParams.getAll('priority')).toEqual(['high', 'urgent'])
    }
  })

  test('when a title is only spaces, then the problem is shown next to the field and in the live region, and nothing is written', async () => {
    const { page, user_id } = await signedIn()
    await page.fill('#new-title', '   ')
    await page.click('#new-task button[type=submit]')
    await until(() => page.locator('#new-title-error').textContent(), 'Must not be blank or contain NUL characters')
    expect(await page.locator('#new-title').getAttribute('aria-invalid')).toBe('true')
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('new-title')
    const notice = page.locator('#notice')
    expect(await notice.getAttribute('aria-live')).toBe('polite')
    expect(await notice.textContent()).toBe('Title: must not be blank or contain NUL characters')
    await shoot(page, '06-validation-error')
    expect(await rows(user_id)()).toEqual([])

    // Fixing it clears the error; the same rule applies when editing.
    await create(page, 'A real title')
    await until(() => page.locator('#new-title-error').textContent(), '')
    await until(() => page.locator('#new-title').getAttribute('aria-invalid'), null)
    await page.getByRole('button', { name: 'Edit “A real title”' }).click()
    await page.getByRole('form', { name: 'Edit “A real title”' }).getByLabel('Title').fill(' ')
    await page.getByRole('button', { name: 'Save' }).click()
    const fieldError = page.getByRole('form', { name: 'Edit “A real title”' }).locator('.field-error').first()
    await until(() => fieldError.textContent(), 'Must not be blank or contain NUL characters')
    expect(await rows(user_id)()).toEqual([{ title: 'A real title', description: null, completed: false }])
  })

  test('when only the keyboard is used, then a task can be created, completed and deleted, with a visible focus ring', async () => {
    const { page, user_id } = await signedIn()
    const focused = () => page.evaluate(() => document.activeElement?.id ?? '')
    const tabTo = async (id: string) => {
      for (let i = 0; i < 60 && (await focused()) !== id; i++) await page.keyboard.press('Tab')
      expect(await focused()).toBe(id)
    }
    await tabTo('new-title')
    await page.keyboard.type('Typed, not clicked')
    await page.keyboard.press('Enter')
    await until(async () => (await rows(user_id)()).map((r) => r.title), ['Typed, not clicked'])

    const [task] = await server.sql<{ id: string }[]>`select id from tasks where user_id = ${user_id}`
    await tabTo(`task-${task?.id}-done`)
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement as Element).outlineStyle)
    expect(outline).not.toBe('none')
    await shoot(page, '07-keyboard-focus')
    await page.keyboard.press('Space')
    await until(async () => (await rows(user_id)())[0]?.completed, true)
    // The checkbox is disabled while its request runs and gets the focus back when the answer is shown.
    await until(focused, `task-${task?.id}-done`)

    // Delete: Tab to the item's Delete button; the dialog opens on Cancel, Tab reaches Delete.
    await page.keyboard.press('Tab') // Edit
    await page.keyboard.press('Tab') // Delete
    await page.keyboard.press('Enter')
    await page.getByRole('dialog').waitFor()
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Cancel')
    await page.keyboard.press('Tab')
    await page.keyboard.press('Enter')
    await until(rows(user_id), [])
  })

  test('when the screen is a phone (360×740), then nothing scrolls sideways, even with long words and open forms', async () => {
    const { page } = await signedIn({ width: 360, height: 740 })
    await create(page, 'A'.repeat(200), `${'unbroken'.repeat(60)} and some ordinary words after it`)
    await create(page, 'Pick up the dry cleaning before six', 'Ticket is in the blue jacket')
    expect(await sideways(page)).toBe(0)
    await shoot(page, '08-phone')
    await page.getByRole('button', { name: 'Edit “Pick up the dry cleaning before six”' }).click()
    expect(await sideways(page)).toBe(0)
    await shoot(page, '09-phone-editing')
    await page.getByRole('button', { name: 'Cancel' }).click()
    await page.getByRole('button', { name: /^Delete “A+”$/ }).click()
    await page.getByRole('dialog').waitFor()
    expect(await sideways(page)).toBe(0)
    await shoot(page, '10-phone-confirm')
  })

  test('when live updates are down and a task changed in another tab, then an edit, a toggle or a delete from the stale tab is refused with "changed elsewhere", and nothing is overwritten', async () => {
    const { page, user_id, token } = await signedIn()
    // The stream cannot connect (a proxy that drops it, say): the page says so and keeps retrying.
    await page.route('**/api/tasks/events', (route) => route.abort())
    await page.reload()
    await until(() => page.locator('#connection').isVisible(), true)
    expect(await page.locator('#connection').textContent()).toBe('Live updates paused: reconnecting…')
    await create(page, 'Plan the offsite')
    await create(page, 'Book the venue')
    const api = server.client(token)
    const [offsite, venue] = (await api.GET('/api/tasks', { params: { query: { sort: 'title', order: 'desc' } } })).data ?? []
    if (!offsite || !venue) throw new Error('tasks missing')
    const changeElsewhere = (task_id: number, title: string) =>
      api.PATCH('/api/tasks/{task_id}', { params: { path: { task_id } }, body: { title } })
    const warning = 'This task was changed in another tab or on another device, so your change was not saved.'

    // The stale tab toggles a task renamed elsewhere: refused, and the list shows the new version.
    await changeElsewhere(offsite.id, 'Plan the offsite (renamed in tab 2)')
    await page.getByRole('checkbox', { name: 'Plan the offsite' }).check()
    await until(async () => (await page.locator('#notice').textContent())?.startsWith(warning), true)
    await until(titles(page), ['Book the venue', 'Plan the offsite (renamed in tab 2)'])
    await shoot(page, '11-changed-elsewhere')
    expect((await rows(user_id)()).map((r) => [r.title, r.completed])).toEqual([
      ['Plan the offsite (renamed in tab 2)', false],
      ['Book the venue', false],
    ])

    // An edit made from the stale version is refused too; the edit elsewhere survives.
    await page.getByRole('button', { name: 'Edit “Book the venue”' }).click()
    await changeElsewhere(venue.id, 'Book the venue (tab 2)')
    const form = page.getByRole('form', { name: 'Edit “Book the venue”' })
    await form.getByLabel('Title').fill('Book the venue (stale tab)')
    await form.getByRole('button', { name: 'Save' }).click()
    await until(titles(page), ['Book the venue (tab 2)', 'Plan the offsite (renamed in tab 2)'])
    expect((await rows(user_id)()).map((r) => r.title)).toEqual(['Plan the offsite (renamed in tab 2)', 'Book the venue (tab 2)'])

    // Once reloaded, the page acts on the latest version.
    await page.getByRole('checkbox', { name: 'Book the venue (tab 2)' }).check()
    await until(async () => (await rows(user_id)())[1]?.completed, true)
  })

  test("when a second user opens the page, then they see none of the first user's tasks, and the reverse", async () => {
    const first = await signedIn()
    await create(first.page, 'First user’s secret plan')
    const second = await signedIn()
    await until(() => second.page.locator('#summary').textContent(), 'No tasks yet: add one above.')
    await second.page.fill('#q', 'secret')
    await until(() => second.page.locator('#summary').textContent(), 'No tasks match.')
    await second.page.fill('#q', '')
    await create(second.page, 'Second user’s task')
    await until(titles(second.page), ['Second user’s task'])
    await first.page.reload()
    await first.page.locator('#workspace').waitFor()
    await until(titles(first.page), ['First user’s secret plan'])
  })

  test('when a task is created and edited with a priority, tags, a due date, a repetition and a reminder, then the page shows them in local time and the database holds them in UTC', async () => {
    const { page, user_id, requests, failures } = await signedIn()
    await page.fill('#new-title', 'Water the plants')
    await page.selectOption('#new-priority', 'high')
    await page.fill('#new-tags', ' home, Garden ,')
    await page.fill('#new-due_date', '2030-01-15T09:30') // Berlin in winter: 08:30 UTC
    await page.selectOption('#new-recurrence', 'weekly')
    await page.fill('#new-remind_at', '2030-01-15T09:00')
    await page.click('#new-task button[type=submit]')
    const stored = {
      title: 'Water the plants',
      completed: false,
      priority: 'high',
      tags: ['home', 'Garden'],
      due_date: '2030-01-15T08:30:00.000Z',
      recurrence: 'weekly',
      remind_at: '2030-01-15T08:00:00.000Z',
    }
    await until(organized(user_id), [stored])
    const item = page.locator('#list li').first()
    await until(() => item.locator('.badge').textContent(), 'High priority')
    expect(await item.locator('.chip').allTextContents()).toEqual(['Show tasks tagged home', 'Show tasks tagged Garden'])
    expect(await times(page, 'Water the plants')()).toEqual(['Jan 15, 2030, 9:30 AM', 'Jan 15, 2030, 9:00 AM'])
    expect(await item.locator('.schedule').textContent()).toContain('Repeats weekly')
    // The form is ready for the next task: defaults back.
    expect(await page.inputValue('#new-priority')).toBe('medium')
    expect(await page.inputValue('#new-recurrence')).toBe('')

    // Edit: the fields show the stored values in local time; only what changed is sent.
    await page.getByRole('button', { name: 'Edit “Water the plants”' }).click()
    const form = page.getByRole('form', { name: 'Edit “Water the plants”' })
    expect(await form.getByLabel('Due').inputValue()).toBe('2030-01-15T09:30')
    expect(await form.getByLabel('Remind me').inputValue()).toBe('2030-01-15T09:00')
    expect(await form.getByLabel('Tags').inputValue()).toBe('home, Garden')
    await form.getByLabel('Priority').selectOption('urgent')
    await form.getByLabel('Tags').fill('home, garden, weekend')
    await form.getByLabel('Remind me').fill('')
    await shoot(page, '12-editing-organized')
    await form.getByRole('button', { name: 'Save' }).click()
    await until(organized(user_id), [{ ...stored, priority: 'urgent', tags: ['home', 'garden', 'weekend'], remind_at: null }])
    const patch = requests.filter((r) => r.method === 'PATCH').at(-1)
    expect(Object.keys(JSON.parse(patch?.body ?? '{}')).sort()).toEqual(['description', 'priority', 'remind_at', 'tags', 'title'])
    await until(() => item.locator('.badge').textContent(), 'Urgent priority')

    // A duplicate tag (ignoring case) is the server's 422, shown next to the Tags field.
    await page.getByRole('button', { name: 'Edit “Water the plants”' }).click()
    await form.getByLabel('Tags').fill('home, HOME')
    await form.getByRole('button', { name: 'Save' }).click()
    await until(() => form.locator('.tags .field-error').textContent(), 'Repeats the tag "home" (tags are unique ignoring case)')
    expect(await form.getByLabel('Tags').getAttribute('aria-invalid')).toBe('true')
    expect((await organized(user_id)())[0]?.tags).toEqual(['home', 'garden', 'weekend'])
    await form.getByRole('button', { name: 'Cancel' }).click()

    // A repetition without a due date is not sent: the page says so next to the field.
    const posts = () => requests.filter((r) => r.method === 'POST').length
    const postsBefore = posts()
    await page.fill('#new-title', 'Stretch')
    await page.selectOption('#new-recurrence', 'daily')
    await page.click('#new-task button[type=submit]')
    await until(() => page.locator('#new-recurrence-error').textContent(), 'A repeating task needs a due date: set one, or choose “Never”.')
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('new-recurrence')
    await shoot(page, '13-repeats-needs-due-date')
    expect(posts()).toBe(postsBefore)
    // Should one reach the server anyway (here the due date is dropped on the way), its 422 lands there too.
    await page.route('**/api/tasks', (route) => {
      if (route.request().method() !== 'POST') return route.continue()
      const { due_date: _, ...body } = route.request().postDataJSON()
      return route.continue({ postData: JSON.stringify(body) })
    })
    await page.fill('#new-due_date', '2030-01-16T07:00')
    await page.click('#new-task button[type=submit]')
    await until(() => page.locator('#new-recurrence-error').textContent(), 'Needs a due_date (a recurring task must have one)')
    expect(await page.locator('#new-recurrence').getAttribute('aria-invalid')).toBe('true')
    await page.unroute('**/api/tasks')
    expect((await organized(user_id)()).map((t) => t.title)).toEqual(['Water the plants'])
    expect(failures).toEqual([])
  })

  test('when a pending task is past its due date, then it shows "Overdue" in red and is counted; completing a repeating task shows its next occurrence', async () => {
    const { page, user_id, token } = await signedIn()
    await seed(page, token, [
      { title: 'Someday' },
      { title: 'Renew passport', due_date: '2030-06-01T10:00:00Z' },
      { title: 'Pay rent', due_date: '2020-03-10T09:00:00Z', recurrence: 'weekly', priority: 'urgent', tags: ['bills'] },
    ])
    const overdue = page.locator('#list li', { has: page.getByText('Pay rent') }).locator('.overdue')
    await until(() => overdue.textContent().then((t) => t?.replace(/\s/g, ' ')), 'Overdue: due Mar 10, 2020, 10:00 AM')
    expect(await overdue.evaluate((node) => getComputedStyle(node).color)).toBe('rgb(180, 35, 24)')
    expect(
      await page
        .locator('#list li', { has: page.getByText('Renew passport') })
        .locator('.overdue')
        .count(),
    ).toBe(0)
    await until(left(page), '3 items left · 1 overdue')
    await shoot(page, '14-organized')

    // click(), not check(): check() looks the checkbox up again afterwards, and by then the live
    // update may have added the next occurrence, a second "Pay rent".
    await page.getByRole('checkbox', { name: 'Pay rent' }).click()
    await until(notice(page), 'Completed “Pay rent”. Next: Mar 17, 2020, 10:00 AM.')
    expect((await organized(user_id)()).filter((t) => t.title === 'Pay rent')).toEqual([
      {
        title: 'Pay rent',
        completed: true,
        priority: 'urgent',
        tags: ['bills'],
        due_date: '2020-03-10T09:00:00.000Z',
        recurrence: 'weekly',
        remind_at: null,
      },
      {
        title: 'Pay rent',
        completed: false,
        priority: 'urgent',
        tags: ['bills'],
        due_date: '2020-03-17T09:00:00.000Z',
        recurrence: 'weekly',
        remind_at: null,
      },
    ])
    // The list was reloaded: both occurrences, the done one no longer overdue; focus stays on its checkbox.
    await until(titles(page), ['Pay rent', 'Pay rent', 'Renew passport', 'Someday'])
    expect(await page.locator('#list li.done .overdue').count()).toBe(0)
    expect(await page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.checked)).toBe(true)
    await until(left(page), '3 items left · 1 overdue')
  })

  test('when the list is filtered by priority, tag and due window and sorted by due date or priority, then it shows exactly the matching tasks in that order', async () => {
    const { page, token, requests } = await signedIn()
    await seed(page, token, [
      { title: 'Alpha', priority: 'low', tags: ['work'], due_date: '2030-01-10T09:00:00Z' },
      { title: 'Bravo', priority: 'urgent', tags: ['home'], due_date: '2030-01-05T09:00:00Z' },
      { title: 'Charlie', priority: 'high', tags: ['work', 'calls'] },
      { title: 'Delta', tags: ['Work', 'home'], due_date: '2030-01-20T09:00:00Z' },
    ])
    await page.selectOption('#sort', 'due_date')
    await page.selectOption('#order', 'asc')
    await until(titles(page), ['Bravo', 'Alpha', 'Delta', 'Charlie'])
    await page.selectOption('#order', 'desc') // without a due date: last either way
    await until(titles(page), ['Delta', 'Alpha', 'Bravo', 'Charlie'])
    await page.selectOption('#sort', 'priority')
    await until(titles(page), ['Bravo', 'Charlie', 'Delta', 'Alpha'])

    await page.getByRole('checkbox', { name: 'High', exact: true }).check()
    await page.getByRole('checkbox', { name: 'Urgent', exact: true }).check()
    await until(titles(page), ['Bravo', 'Charlie'])
    await until(left(page), '2 items left')
    await page.getByRole('checkbox', { name: 'High', exact: true }).uncheck()
    await page.getByRole('checkbox', { name: 'Urgent', exact: true }).uncheck()
    await until(left(page), '4 items left')

    // A tag chip filters (ignoring case); the active tags are shown and each removes itself.
    const activeTags = page.locator('#tag-filter')
    expect(await activeTags.isVisible()).toBe(false)
    await page
      .locator('#list li', { has: page.getByText('Alpha') })
      .getByRole('button', { name: 'Show tasks tagged work' })
      .click()
    await until(titles(page), ['Charlie', 'Delta', 'Alpha'])
    expect(await activeTags.isVisible()).toBe(true)
    await until(notice(page), 'Showing tasks tagged “work”.')
    await until(left(page), '3 items left')
    await page
      .locator('#list li', { has: page.getByText('Delta') })
      .getByRole('button', { name: 'Show tasks tagged home' })
      .click()
    await until(titles(page), ['Delta'])
    await shoot(page, '15-tag-filter')
    const lastList = requests.filter((r) => new URL(r.url).pathname === '/api/tasks' && r.method === 'GET').at(-1)
    expect(new URL(lastList?.url ?? '').searchParams.getAll('tag')).toEqual(['work', 'home'])
    await page.getByRole('button', { name: 'Remove the filter by tag work' }).click()
    await until(titles(page), ['Bravo', 'Delta'])
    await page.getByRole('button', { name: 'Remove the filter by tag home' }).click()
    await until(titles(page), ['Bravo', 'Charlie', 'Delta', 'Alpha'])
    expect(await activeTags.isVisible()).toBe(false)

    // The due window, in local time: before is exclusive, from inclusive; tasks without a due date never match.
    await page.fill('#due-before', '2030-01-15T00:00')
    await until(titles(page), ['Bravo', 'Alpha'])
    await page.fill('#due-after', '2030-01-10T10:00') // 09:00 UTC: Alpha's due time exactly
    await until(titles(page), ['Alpha'])
    await until(left(page), '1 item left')
    const lastCounts = requests.filter((r) => new URL(r.url).pathname === '/api/tasks/counts').at(-1)
    expect(Object.fromEntries(new URL(lastCounts?.url ?? '').searchParams)).toEqual({
      due_after: '2030-01-10T09:00:00.000Z',
      due_before: '2030-01-14T23:00:00.000Z',
    })
  })

  test('when "Mark all complete" and "Clear completed" are used, then they act on the filtered tasks, the latter after its confirmation, and "items left" follows', async () => {
    const { page, user_id, token } = await signedIn()
    await seed(page, token, [
      { title: 'Report', tags: ['work'] },
      { title: 'Slides', tags: ['work'], due_date: '2030-02-01T08:00:00Z', recurrence: 'daily' },
      { title: 'Groceries', tags: ['home'] },
    ])
    await until(left(page), '3 items left')
    await page
      .locator('#list li', { has: page.getByText('Report') })
      .getByRole('button', { name: 'Show tasks tagged work' })
      .click()
    await until(titles(page), ['Slides', 'Report'])
    await page.getByRole('button', { name: 'Mark all complete' }).click()
    await until(notice(page), 'Marked 2 tasks complete.')
    const state = async () => (await organized(user_id)()).map((t) => [t.title, t.completed, t.due_date])
    expect(await state()).toEqual([
      ['Report', true, null],
      ['Slides', true, '2030-02-01T08:00:00.000Z'],
      ['Groceries', false, null],
      ['Slides', false, '2030-02-02T08:00:00.000Z'], // the repeating task rolled over
    ])
    await until(titles(page), ['Slides', 'Slides', 'Report'])
    await until(left(page), '1 item left')
    await page.getByRole('button', { name: 'Remove the filter by tag work' }).click()
    await until(left(page), '2 items left')

    // Clear completed, with the keyboard: the dialog opens on Cancel; Escape and Cancel keep everything.
    await page.focus('#clear-completed')
    await page.keyboard.press('Enter')
    await page.getByRole('dialog').waitFor()
    expect(await page.locator('#confirm-text').textContent()).toBe('Delete the 2 completed tasks? This cannot be undone.')
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Cancel')
    await shoot(page, '16-clear-completed')
    await page.keyboard.press('Escape')
    await until(() => page.getByRole('dialog').isVisible(), false)
    expect(await state()).toHaveLength(4)
    await page.focus('#clear-completed')
    await page.keyboard.press('Enter')
    await page.getByRole('dialog').waitFor()
    await page.keyboard.press('Tab')
    await page.keyboard.press('Enter')
    await until(notice(page), 'Deleted 2 completed tasks.')
    expect(await state()).toEqual([
      ['Groceries', false, null],
      ['Slides', false, '2030-02-02T08:00:00.000Z'],
    ])
    await until(titles(page), ['Slides', 'Groceries'])
    await until(left(page), '2 items left')
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('clear-completed')
  })

  test('when only the keyboard is used, then priority, tags, due date and repetition are set, and a tag filter is applied and removed', async () => {
    const { page, user_id } = await signedIn()
    const focused = () => page.evaluate(() => document.activeElement?.id ?? '')
    const tabTo = async (id: string) => {
      for (let i = 0; i < 10 && (await focused()) !== id; i++) await page.keyboard.press('Tab')
      expect(await focused()).toBe(id)
    }
    await page.focus('#new-title')
    await page.keyboard.type('Keyboard task')
    await page.keyboard.press('Tab') // Description
    await page.keyboard.press('Tab') // Priority
    expect(await focused()).toBe('new-priority')
    await page.keyboard.press('ArrowDown') // Medium → High
    await page.keyboard.press('Tab')
    await page.keyboard.type('focus, deep work')
    await page.keyboard.press('Tab') // Due: month/day/year, then the time
    await page.keyboard.type('03012030')
    await page.keyboard.press('ArrowRight')
    await page.keyboard.type('0815A')
    await tabTo('new-recurrence') // past the date picker's button
    await page.keyboard.press('ArrowDown') // Never → Daily
    await tabTo('new-task-submit') // past Remind me
    await page.keyboard.press('Enter')
    await until(organized(user_id), [
      {
        title: 'Keyboard task',
        completed: false,
        priority: 'high',
        tags: ['focus', 'deep work'],
        due_date: '2030-03-01T07:15:00.000Z',
        recurrence: 'daily',
        remind_at: null,
      },
    ])

    // Tab on, past the filters and bulk actions, to the task's chip.
    const onChip = () => page.evaluate(() => document.activeElement?.textContent === 'Show tasks tagged deep work')
    for (let i = 0; i < 60 && !(await onChip()); i++) await page.keyboard.press('Tab')
    expect(await onChip()).toBe(true)
    await page.keyboard.press('Enter')
    // Focus moves to the active filter, whose Enter removes it and returns to the search field.
    await until(() => page.evaluate(() => document.activeElement?.getAttribute('data-tag')), 'deep work')
    await until(notice(page), 'Showing tasks tagged “deep work”.')
    await page.keyboard.press('Enter')
    await until(() => page.locator('#tag-filter').isVisible(), false)
    await until(focused, 'q')
  })

  test('when the screen is a phone (360×740), then the organize controls, badges, chips and bulk actions fit without scrolling sideways', async () => {
    const { page, token } = await signedIn({ width: 360, height: 740 })
    await seed(page, token, [
      { title: 'Call the landlord', priority: 'low', tags: ['home'] },
      {
        title: 'Submit the quarterly tax declaration',
        priority: 'urgent',
        tags: ['finance', 'deadline', 'averyveryverylongtagwithoutanybreaksatalltoday'],
        due_date: '2020-04-30T16:00:00Z',
        recurrence: 'monthly',
        // Ahead: a reminder already due would come as a notice over the list (tested below).
        remind_at: '2030-04-30T08:00:00Z',
      },
      { title: 'Plan the trip', priority: 'high', tags: ['travel'], due_date: '2030-07-01T10:00:00Z' },
    ])
    await until(left(page), '3 items left · 1 overdue')
    expect(await sideways(page)).toBe(0)
    await shoot(page, '17-phone-organized')
    await page.locator('#filters .priorities').scrollIntoViewIfNeeded()
    await page.screenshot({ path: `${screenshots}17-phone-filters.png` }) // the viewport only: readable at full size
    await page.getByRole('checkbox', { name: 'Urgent', exact: true }).check()
    await page.getByRole('button', { name: 'Show tasks tagged averyveryverylongtagwithoutanybreaksatalltoday' }).click()
    await until(titles(page), ['Submit the quarterly tax declaration'])
    expect(await sideways(page)).toBe(0)
    await page.getByRole('button', { name: 'Edit “Submit the quarterly tax declaration”' }).click()
    expect(await sideways(page)).toBe(0)
    await shoot(page, '18-phone-editing-organized')
    await page.getByRole('button', { name: 'Cancel' }).click()
    await page.emulateMedia({ colorScheme: 'dark' })
    await shoot(page, '19-phone-dark')
  })
})

/** A new tab of `context` signed in with `token`, once its event stream is open. */
async function liveTab(context: BrowserContext, token: string): Promise<Opened> {
  const streaming = context.waitForEvent('response', (response) => new URL(response.url()).pathname === '/api/tasks/events')
  const opened = await open(`#token=${token}`, undefined, context)
  await opened.page.locator('#workspace').waitFor()
  expect((await streaming).status()).toBe(200)
  return opened
}

const phone = { width: 360, height: 740 }
describeInBrowser('live updates in headless Chromium (issue 9)', () => {
  // What one tab changes shows in the other without a reload. "Within a second" is a latency, which
  // `npm run bench -- --events` measures (a few ms to the stream; the page then waits 100 ms to batch
  // events): on a shared, loaded machine a test only bounds it loosely, so that it fails for a page
  // that does not update, not for a slow moment.
  const soon = 5000

  test('when the same user has the page open in two tabs, then what one creates, edits, completes and deletes shows in the other within a second, without reloading it', async () => {
    const user_id = newUser()
    const token = await tokenFor(user_id)
    const context = await newContext()
    const one = await liveTab(context, token)
    const two = await liveTab(context, token)
    // Gone if the tab reloads.
    await two.page.evaluate(() => Object.assign(window, { notReloaded: true }))

    await create(one.page, 'Buy milk', 'Oat')
    await until(titles(two.page), ['Buy milk'], soon)
    await until(left(two.page), '1 item left', soon)

    // An edit open in tab 2 stays open, with what was typed, while other changes arrive.
    await two.page.getByRole('button', { name: 'Edit “Buy milk”' }).click()
    const editing = two.page.getByRole('form', { name: 'Edit “Buy milk”' })
    await editing.getByLabel('Description').fill('Oat, 2 litres')
    await create(one.page, 'Call Alice')
    await until(titles(two.page), ['Call Alice'], soon)
    expect(await editing.getByLabel('Description').inputValue()).toBe('Oat, 2 litres')
    await editing.getByRole('button', { name: 'Cancel' }).click()

    // Renamed in tab 1; then completed there while tab 2 shows only pending tasks.
    await one.page.getByRole('button', { name: 'Edit “Buy milk”' }).click()
    const renaming = one.page.getByRole('form', { name: 'Edit “Buy milk”' })
    await renaming.getByLabel('Title').fill('Buy oat milk')
    await renaming.getByRole('button', { name: 'Save' }).click()
    await until(titles(two.page), ['Call Alice', 'Buy oat milk'], soon)
    await two.page.selectOption('#status', 'pending')
    await until(titles(two.page), ['Call Alice', 'Buy oat milk'])
    await one.page.getByRole('checkbox', { name: 'Buy oat milk' }).check()
    await until(titles(two.page), ['Call Alice'], soon)
    await until(left(two.page), '1 item left', soon)
    await two.page.selectOption('#status', 'all')
    await until(() => two.page.getByRole('checkbox', { name: 'Buy oat milk' }).isChecked(), true)
    await shoot(two.page, '20-live-second-tab')

    // Tab 2 changes that task next: the events brought its new ETag, so this is no 412.
    await two.page.getByRole('checkbox', { name: 'Buy oat milk' }).uncheck()
    await until(notice(two.page), 'Reopened “Buy oat milk”.')
    await until(() => one.page.getByRole('checkbox', { name: 'Buy oat milk' }).isChecked(), false, soon)

    // Deleted in tab 2: gone from tab 1, whose count follows.
    await two.page.getByRole('button', { name: 'Delete “Call Alice”' }).click()
    await two.page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click()
    await until(titles(one.page), ['Buy oat milk'], soon)
    await until(left(one.page), '1 item left', soon)

    await two.page.setViewportSize(phone)
    await create(one.page, 'Pick up the dry cleaning before six')
    await until(titles(two.page), ['Pick up the dry cleaning before six', 'Buy oat milk'], soon)
    expect(await sideways(two.page)).toBe(0)
    await shoot(two.page, '21-live-second-tab-phone')

    expect(await two.page.evaluate(() => (window as { notReloaded?: boolean }).notReloaded)).toBe(true)
    expect(await rows(user_id)()).toEqual([
      { title: 'Buy oat milk', description: 'Oat', completed: false },
      { title: 'Pick up the dry cleaning before six', description: null, completed: false },
    ])
    expect([...one.failures, ...two.failures]).toEqual([])
  }, 30_000)

  test('when a reminder comes and notifications are not allowed, then the page shows it in a status notice until dismissed, at desktop and phone widths', async () => {
    const token = await tokenFor(newUser())
    const { page, failures } = await liveTab(await newContext(), token)
    // Nothing was asked on load: the person may enable notifications with this button.
    await page.getByRole('button', { name: 'Enable reminders' }).waitFor()

    await server.client(token).POST('/api/tasks', {
      body: { title: 'Water the plants', due_date: '2030-01-15T08:30:00Z', remind_at: '2020-01-01T00:00:00Z' },
    })
    const reminder = page.locator('#reminders .reminder')
    await until(
      () =>
        reminder
          .locator('p')
          .allTextContents()
          .then((all) => all.map((t) => t.replace(/\s/g, ' '))),
      ['Reminder: Water the plants', 'Due Jan 15, 2030, 9:30 AM'],
    )
    expect(await page.locator('#reminders').getAttribute('role')).toBe('status')
    await until(titles(page), ['Water the plants'])
    // The viewport only: the notice stays at its bottom, wherever the page is scrolled.
    await page.locator('#list').scrollIntoViewIfNeeded()
    await page.screenshot({ path: `${screenshots}22-reminder.png` })
    await page.setViewportSize(phone)
    expect(await sideways(page)).toBe(0)
    await page.locator('#list').scrollIntoViewIfNeeded()
    await page.screenshot({ path: `${screenshots}23-reminder-phone.png` })

    await page.getByRole('button', { name: 'Dismiss the reminder “Water the plants”' }).click()
    expect(await reminder.count()).toBe(0)
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('new-title')
    expect(failures).toEqual([])
  })

  test('when reminders are enabled with a click and notifications allowed, then a reminder comes as a browser notification, not in the page', async () => {
    const context = await newContext()
    // Records what the page asks of the Notification API.
    await context.addInitScript(() => {
      const seen = { asked: 0, shown: [] as unknown[] }
      Object.assign(window, { seen })
      const Real = window.Notification
      const ask = Real.requestPermission.bind(Real)
      Real.requestPermission = () => {
        seen.asked++
        return ask()
      }
      window.Notification = new Proxy(Real, {
        construct(target, args) {
          seen.shown.push(args)
          return Reflect.construct(target, args)
        },
      })
    })
    const token = await tokenFor(newUser())
    const { page, failures } = await liveTab(context, token)
    const seen = () => page.evaluate(() => (window as unknown as { seen: { asked: number; shown: unknown[] } }).seen)
    expect(await seen()).toEqual({ asked: 0, shown: [] })

    await context.grantPermissions(['notifications'], { origin: server.url })
    await page.getByRole('button', { name: 'Enable reminders' }).click()
    await until(notice(page), 'Reminders will show as notifications.')
    expect(await page.getByRole('button', { name: 'Enable reminders' }).isVisible()).toBe(false)

    const { data: task } = await server.client(token).POST('/api/tasks', { body: { title: 'Stretch', remind_at: '2020-01-01T00:00:00Z' } })
    await until(seen, { asked: 1, shown: [['Reminder: Stretch', { body: '', tag: `task-${task?.id}` }]] })
    expect(await page.locator('#reminders .reminder').count()).toBe(0)
    expect(failures).toEqual([])
  })
})
