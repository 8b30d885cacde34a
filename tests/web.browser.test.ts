// The web page at `/` (issue 3) in a real headless Chromium against the real server and PostgreSQL:
// the token from the fragment, every task action through the page, errors, keyboard, phone width,
// and a second user. Screenshots go to test-artifacts/screenshots/ (git-ignored).
import { existsSync, mkdirSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals'
import { SignJWT } from 'jose'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
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
  /** Every request the page made: its URL as sent (no fragment) and its Authorization header. */
  requests: { url: string; authorization: string | undefined }[]
  /** Uncaught exceptions and Content-Security-Policy violations. */
  failures: string[]
}

async function open(fragment = '', viewport = { width: 1024, height: 800 }): Promise<Opened> {
  const context = await browser.newContext({ viewport })
  contexts.push(context)
  context.setDefaultTimeout(5000)
  const page = await context.newPage()
  const opened: Opened = { page, requests: [], failures: [] }
  page.on('request', (request) => {
    opened.requests.push({ url: request.url().split('#')[0] ?? '', authorization: request.headers().authorization })
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

async function create(page: Page, title: string, description = '') {
  const before = await page.locator('#list .title').count()
  await page.fill('#new-title', title)
  await page.fill('#new-description', description)
  await page.click('#new-task button[type=submit]')
  await until(async () => (await page.locator('#list .title').count()) > before, true)
}

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

  test('when there are more tasks than a page, then "Load more" follows the Link header until the last page', async () => {
    const { page, user_id, requests } = await signedIn()
    await server.sql`
      insert into tasks (user_id, title)
      select ${user_id}, 'Task ' || lpad(n::text, 2, '0') from generate_series(1, 45) as n`
    await page.selectOption('#sort', 'title')
    await page.selectOption('#order', 'asc')
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
    for (const { url } of pages)
      expect(Object.fromEntries(new URL(url).searchParams)).toMatchObject({ sort: 'title', order: 'asc', limit: '20' })
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
      for (let i = 0; i < 30 && (await focused()) !== id; i++) await page.keyboard.press('Tab')
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
    const sideways = () => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
    expect(await sideways()).toBe(0)
    await shoot(page, '08-phone')
    await page.getByRole('button', { name: 'Edit “Pick up the dry cleaning before six”' }).click()
    expect(await sideways()).toBe(0)
    await shoot(page, '09-phone-editing')
    await page.getByRole('button', { name: 'Cancel' }).click()
    await page.getByRole('button', { name: /^Delete “A+”$/ }).click()
    await page.getByRole('dialog').waitFor()
    expect(await sideways()).toBe(0)
    await shoot(page, '10-phone-confirm')
  })

  test('when a task changed in another tab, then an edit, a toggle or a delete from the stale tab is refused with "changed elsewhere", and nothing is overwritten', async () => {
    const { page, user_id, token } = await signedIn()
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
})
