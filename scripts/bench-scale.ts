// npx tsx scripts/bench-scale.ts (npm run bench -- --scale): what a list page and a search cost at
// scale, measured through the repository's own listTasks against 1,000,000 tasks of 10,000 users
// (one with 100,000, one with 50, the others about 90), and what the search index costs a create.
// Absolute numbers depend on the machine; compare the ratios, which are measured in one run with
// the cases interleaved, so that a neighbour's load falls on all of them alike.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { pino } from 'pino'
import { connect, type Sql } from '../src/db.js'
import { startEmbeddedPostgres } from '../src/embedded-postgres.js'
import { migrate } from '../src/migrate.js'
import { createTask, type ListOptions, listTasks, type Position } from '../src/tasks/repository.js'

export interface ScaleOptions {
  /** A PostgreSQL to seed (in a schema of its own, dropped afterwards); default BENCH_DATABASE_URL, else an embedded one in a temporary directory. */
  databaseUrl?: string
  /** Timed runs per case after the warm-up; a slow case gets fewer, within about two seconds. */
  repetitions?: number
  /** Page size of every measured list. */
  limit?: number
  /** Single-row creates per round, and rounds, for each index configuration (0 inserts: skip). */
  inserts?: number
  rounds?: number
}

const heavy = 'heavy-user'
const light = 'light-user'
const sorts = ['created_at', 'updated_at', 'title', 'due_date', 'priority'] as const
const orders = ['desc', 'asc'] as const
const statuses = ['all', 'pending', 'completed'] as const
const shapes = sorts.flatMap((sort) => orders.flatMap((order) => statuses.map((status) => ({ sort, order, status }))))
type Shape = (typeof shapes)[number]

// Words for titles ("buy milk tomorrow") and sentences for descriptions, picked with skewed
// frequencies, so that searches range from one match to most of a user's tasks.
const verbs = (
  'buy|call|email|fix|review|write|plan|book|clean|pay|send|update|check|prepare|schedule|read|order|renew|cancel|finish|organize|' +
  'water|return|pick up'
).split('|')
const things = (
  'milk|groceries|the dentist|invoice 2231|quarterly report|slides|taxes|passport|car service|bike|garden|plants|laundry|kitchen|' +
  'budget|proposal|contract|flights|hotel|train tickets|birthday gift|library books|insurance|rent|electricity bill|phone bill|' +
  'newsletter|blog post|pull request|release notes|meeting notes|backlog|roadmap|presentation|interview|resume|recipe|dinner|lunch|' +
  'vet appointment|haircut|gym membership|subscription|doctor|prescription|bank|mortgage|gutters|roof|windows|bathroom|printer|laptop|' +
  'backup|password|server|database|dishwasher|fridge|heating|boiler|school forms|parking permit|visa|wedding rsvp|photos|spreadsheet|' +
  'onboarding|code review|sprint demo|tickets for the concert|yoga class|piano lesson|swimming lessons|car insurance|water bill|' +
  'vacation|conference talk|podcast|thesis|bookshelf|curtains|sofa|lamp|bulbs|batteries|coffee beans|tea|bread|eggs|vegetables|fruit|' +
  'cat food|dog food|vitamins|shoes|jacket|umbrella|keys'
).split('|')
const extras = (
  'today|tomorrow|this week|next week|before Friday|on Monday|for Alice|for Bob|with Carol|with the team|asap|if time|after lunch|' +
  'tonight|this weekend|before the trip|for mum|for dad'
).split('|')
const rare = ['quokka', 'zeppelin', 'xylophone', 'kumquat', 'yurt']
const sentences = (
  'Remember to bring the receipt.|Ask about the discount.|Check the opening hours first.|Call ahead to confirm.|' +
  'Use the shared calendar.|Follow up by email if no answer.|Budget is tight this month.|Needs two signatures.|' +
  'See the notes from the last meeting.|Compare prices online.|Only the organic kind.|Bring the blue folder.|' +
  'Pay with the company card.|Send a copy to accounting.|Do it before the deadline.|Not urgent, but soon.|' +
  'Waiting for a reply from the landlord.|Ask the neighbours for a recommendation.|The old one is broken.|Keep the warranty papers.|' +
  'Double-check the address.|Print two copies.|Park in the back.|Review comments from the team.|Split the cost with Bob.|' +
  'Order online, pick up in store.|Check the spam folder.|Needs a meeting with the manager.|Write down the serial number.|' +
  'Take photos before and after.|Meeting room on the third floor.|Talk to support about the refund.|The password is in the vault.|' +
  'Try the new place on Main Street.|Reschedule if it rains.|Charge the batteries first.|Measure the window.|Ask for the senior rate.|' +
  'Cancel the old subscription afterwards.|Update the spreadsheet when done.'
).split('|')

/** Seeds, measures and prints; resolves when done (the database it started, if any, is stopped). */
export async function benchScale(options: ScaleOptions = {}): Promise<void> {
  const { repetitions = 200, limit = 20, inserts = 5000, rounds = 3 } = options
  const scratch = mkdtempSync(join(tmpdir(), 'todo-api-bench-scale-'))
  chmodSync(scratch, 0o755)
  const given = options.databaseUrl ?? process.env.BENCH_DATABASE_URL
  const embedded = given ? undefined : await startEmbeddedPostgres(scratch, pino({ level: 'silent' }))
  const server = given ?? (embedded?.url as string)
  const schema = `bench_scale_${process.pid}`
  const admin = connect(server, { max: 1 })
  const url = new URL(server)
  url.searchParams.set('search_path', schema)
  const sql = connect(url.toString(), { max: 1 })
  try {
    await admin`create schema ${admin(schema)}`
    await migrate(url.toString())
    const searchIndexes = await seed(sql)

    if (inserts > 0) await benchCreates(sql, searchIndexes, inserts, rounds)
    else for (const { definition } of searchIndexes) await sql.unsafe(definition)
    // The pending list of a GIN index is merged, and the statistics are fresh, as autovacuum leaves them.
    await sql`vacuum analyze tasks`

    await benchLists(url.toString(), sql, repetitions, limit)
  } finally {
    await sql.end()
    if (!embedded) await admin`drop schema if exists ${admin(schema)} cascade`
    await admin.end()
    await embedded?.stop()
    rmSync(scratch, { recursive: true, force: true })
  }
}

/**
 * 1,000,000 tasks, created over three years, in one statement (generate_series, seeded random()).
 * The migration's indexes are dropped first and rebuilt afterwards, which is much faster than
 * maintaining them row by row; the GIN (search) indexes are returned unbuilt, so that what they
 * cost a create can be measured.
 */
async function seed(sql: Sql): Promise<{ name: string; definition: string }[]> {
  const started = performance.now()
  const indexes = await sql<{ name: string; definition: string; gin: boolean }[]>`
    select indexname as name, indexdef as definition, indexdef ~ ' USING gin ' as gin
    from pg_indexes where schemaname = current_schema() and tablename = 'tasks' and indexname <> 'tasks_pkey'
  `
  for (const { name } of indexes) await sql`drop index ${sql(name)}`
  console.log('seeding 1,000,000 tasks…')
  await sql.begin(async (sql) => {
    await sql`select setseed(0.42)`
    await sql`
      insert into tasks (user_id, title, description, completed, created_at, updated_at, priority, due_date)
      select case when i % 10 = 0 then ${heavy} when i % 20000 = 1 then ${light} else 'user-' || (i * 7919 % 9998) end,
             case when r < 0.6 then initcap(t) when r < 0.95 then t else upper(t) end,
             d, random() < 0.55, c, case when random() < 0.5 then c else c + random() * interval '60 days' end,
             -- Most tasks medium, a few urgent; 60% with a due date within a month of their creation.
             (array['low', 'medium', 'medium', 'medium', 'high', 'urgent'])[1 + floor(random() * 6)::int],
             case when random() < 0.6 then date_trunc('minute', c + random() * interval '30 days') end
      from (
        select i, random() as r,
          timestamptz '2023-01-01Z' + i * interval '94 seconds' + random() * interval '1 hour' as c,
          v[1 + floor(random() ^ 2 * cardinality(v))::int] || ' ' || o[1 + floor(random() ^ 1.6 * cardinality(o))::int]
            || case when random() < 0.3 then ' ' || x[1 + floor(random() * cardinality(x))::int] else '' end
            || case when random() < 0.0005 then ' ' || z[1 + floor(random() * cardinality(z))::int] else '' end as t,
          case when random() >= 0.35 then
            s[1 + floor(random() ^ 1.3 * cardinality(s))::int]
            || case when random() < 0.5 then ' ' || s[1 + floor(random() * cardinality(s))::int] else '' end
            || case when random() < 0.2 then ' Ref ' || upper(to_hex(i * 2654435761 % 4294967296)) || '.' else '' end
            || case when random() < 0.0005 then ' Maybe ' || z[1 + floor(random() * cardinality(z))::int] || '?' else '' end
          end as d
        from generate_series(1::bigint, 1000000) as i,
             (select ${verbs}::text[] as v, ${things}::text[] as o, ${extras}::text[] as x,
                     ${rare}::text[] as z, ${sentences}::text[] as s) as words
      ) as generated
    `
  })
  await sql`set maintenance_work_mem = '256MB'`
  for (const { definition } of indexes.filter((i) => !i.gin)) await sql.unsafe(definition) // from the catalog, not input
  await sql`vacuum analyze tasks`
  console.log(`seeded in ${Math.round((performance.now() - started) / 1000)} s`)
  return indexes.filter((i) => i.gin)
}

/**
 * Creates timed with the b-tree indexes only, then with each search index added (from the
 * definition read back from the catalog before the seed, not input) under GIN's ways of taking new
 * entries: fastupdate on (they wait in a pending list, which every search through the index must
 * also read, until an insert that overflows it or a vacuum merges them), with GIN's default limit
 * of 4 MB or with 256 kB, and fastupdate off (every insert merges its own); the migration's own
 * setting last, so that it stays. After each, a rare-word search shows what the creates left behind.
 */
async function benchCreates(sql: Sql, searchIndexes: { name: string; definition: string }[], inserts: number, rounds: number) {
  console.log(
    `\nA create (${rounds} rounds of ${inserts} single-row inserts through createTask into the 1,000,000 rows), and then a search:\n`,
  )
  console.log('| indexes besides the b-trees | create median ms | p95 | p99 | max | creates/s | rare-word search right after, median ms |')
  console.log('|---|---|---|---|---|---|---|')
  const rareSearch = async () => {
    const times: number[] = []
    const run = () => listTasks(sql, heavy, { sort: 'created_at', order: 'desc', status: 'all', limit: 20, q: 'quokka' })
    for (let i = 0; i < 30; i++) times.push(await time({ name: 'rare word', run }))
    return ms(quantile(times, 0.5))
  }
  const report = (label: string, times: number[], search: string) =>
    console.log(
      `| ${label} | ${[0.5, 0.95, 0.99].map((q) => ms(quantile(times, q))).join(' | ')} | ${ms(Math.max(...times))} | ${Math.round(times.length / (sum(times) / 1000))} | ${search} |`,
    )
  report('none', await timeCreates(sql, inserts, rounds), '–')
  for (const { name, definition } of searchIndexes) {
    await sql.unsafe(definition)
    const off = /fastupdate='?off/.test(definition)
    const small = /gin_pending_list_limit='?256\b/.test(definition)
    const ways = [
      {
        label: 'fastupdate on, pending list up to 4 MB',
        migrated: !off && !small,
        set: sql`alter index ${sql(name)} set (fastupdate = on, gin_pending_list_limit = 4096)`,
      },
      {
        label: 'fastupdate on, pending list up to 256 kB',
        migrated: !off && small,
        set: sql`alter index ${sql(name)} set (fastupdate = on, gin_pending_list_limit = 256)`,
      },
      { label: 'fastupdate off', migrated: off, set: sql`alter index ${sql(name)} set (fastupdate = off)` },
    ].sort((a, b) => Number(a.migrated) - Number(b.migrated))
    for (const way of ways) {
      await way.set
      await sql`vacuum tasks`
      const times = await timeCreates(sql, inserts, rounds)
      report(`+ ${name}, ${way.label}${way.migrated ? ' (as migrated)' : ''}`, times, await rareSearch())
    }
  }
}

/** Single-row creates through the repository, for random users, one after another; each one's latency in ms. */
async function timeCreates(sql: Sql, n: number, rounds: number): Promise<number[]> {
  const times: number[] = []
  let seed = 1
  const pick = <T>(list: T[]) => {
    seed = (seed * 48271) % 2147483647 // a fixed sequence (Lehmer), so that every run creates the same tasks
    return list[seed % list.length] as T
  }
  const users = Array.from({ length: 9998 }, (_, i) => i)
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < n; i++) {
      const fields = {
        title: `${pick(verbs)} ${pick(things)} ${pick(extras)}`,
        description: `${pick(sentences)} ${pick(sentences)}`,
      }
      const started = performance.now()
      await createTask(sql, `user-${pick(users)}`, fields)
      times.push(performance.now() - started)
    }
  }
  return times
}

interface Case {
  name: string
  run: () => Promise<unknown>
}

async function benchLists(url: string, sql: Sql, repetitions: number, limit: number): Promise<void> {
  // Prepared statements (postgres.js prepares every statement) settle on a generic plan after their
  // fifth execution when PostgreSQL finds it no costlier; unnamed ones (prepare: false, as behind a
  // transaction pooler) are planned for their parameters every time. Searches are measured both ways.
  const generic = connect(url, { max: 1, connection: { plan_cache_mode: 'force_generic_plan' } })
  const custom = connect(url, { max: 1, prepare: false })
  try {
    const counts = new Map(
      (
        await sql<{ user_id: string; all: number; pending: number; completed: number }[]>`
          select user_id, count(*)::int as all, count(*) filter (where not completed)::int as pending,
                 count(*) filter (where completed)::int as completed
          from tasks where user_id in (${heavy}, ${light}) group by user_id
        `
      ).map((row) => [row.user_id, row]),
    )
    console.log('\nwalking each list to 90% of its length for the deep cursors…')
    const pageCases: Case[] = []
    const pageCell = new Map<string, Case>()
    for (const shape of shapes) {
      for (const user of [light, heavy]) {
        const n = counts.get(user)?.[shape.status] ?? 0
        const deep = await cursorAt(sql, user, shape, Math.max(0, Math.floor(n * 0.9) - limit))
        for (const [where, after] of [
          ['first', undefined],
          ['deep', deep],
        ] as const) {
          const c = { name: `${user} ${label(shape)} ${where}`, run: () => listTasks(sql, user, { ...shape, limit, after }) }
          pageCases.push(c)
          pageCell.set(c.name, c)
        }
      }
    }

    const byCreated: Shape = { sort: 'created_at', order: 'desc', status: 'all' }
    const byTitle: Shape = { sort: 'title', order: 'asc', status: 'all' }
    const pending: Shape = { sort: 'updated_at', order: 'desc', status: 'pending' }
    const needle = (
      await sql<{ code: string }[]>`
      select substring(description from 'Ref ([0-9A-F]+)') as code from tasks where user_id = ${heavy} and description like '%Ref %' limit 1
    `
    )[0]?.code as string
    const searches: { name: string; user: string; shape: Shape; q: string; cursorAt?: number }[] = [
      { name: 'one task (its reference code)', user: heavy, shape: byCreated, q: needle.toLowerCase() },
      { name: 'rare word', user: heavy, shape: byCreated, q: 'quokka' },
      { name: 'rare word, by title', user: heavy, shape: byTitle, q: 'zeppelin' },
      { name: 'uncommon word', user: heavy, shape: byCreated, q: 'umbrella' },
      { name: 'word in 2% of tasks', user: heavy, shape: byCreated, q: 'invoice' },
      { name: 'common word', user: heavy, shape: byCreated, q: 'meeting' },
      { name: 'common word, pending by updated_at', user: heavy, shape: pending, q: 'Meeting' },
      { name: 'common word, by title', user: heavy, shape: byTitle, q: 'bring' },
      { name: 'common word, cursor halfway', user: heavy, shape: byCreated, q: 'meeting', cursorAt: 0.5 },
      { name: 'uncommon word, cursor halfway', user: heavy, shape: byCreated, q: 'umbrella', cursorAt: 0.5 },
      { name: '2 characters, common', user: heavy, shape: byCreated, q: 'pa' },
      { name: '1 character', user: heavy, shape: byCreated, q: 'e' },
      { name: '2 characters, in no task', user: heavy, shape: byCreated, q: 'zq' },
      { name: 'common word, 50-task user', user: light, shape: byCreated, q: 'meeting' },
      { name: 'rare word, 50-task user', user: light, shape: byCreated, q: 'quokka' },
    ]
    const searchCases: Case[] = []
    const searchRows: { name: string; matches: number; page: Record<string, Case>; search: Record<string, Case> }[] = []
    for (const s of searches) {
      const [{ matches } = { matches: 0 }] = await sql<{ matches: number }[]>`
        select count(*)::int as matches from tasks
        where user_id = ${s.user} and (strpos(lower(title), lower(${s.q})) > 0 or strpos(lower(description), lower(${s.q})) > 0)
          ${s.shape.status === 'all' ? sql`` : sql`and completed = ${s.shape.status === 'completed'}`}
      `
      const after = s.cursorAt ? await cursorAt(sql, s.user, { ...s.shape, q: s.q }, Math.floor(matches * s.cursorAt)) : undefined
      const row = { name: `${s.name}: "${s.q}"`, matches, page: {}, search: {} } as (typeof searchRows)[number]
      for (const [mode, pool] of [
        ['generic', generic],
        ['custom', custom],
      ] as const) {
        const page = { name: `page ${mode} ${s.user} ${label(s.shape)}`, run: () => listTasks(pool, s.user, { ...s.shape, limit }) }
        const search = { name: `${mode} ${row.name}`, run: () => listTasks(pool, s.user, { ...s.shape, limit, q: s.q, after }) }
        const known = searchCases.find((c) => c.name === page.name)
        row.page[mode] = known ?? page
        row.search[mode] = search
        if (!known) searchCases.push(page)
        searchCases.push(search)
      }
      searchRows.push(row)
    }

    console.log(`measuring ${pageCases.length + searchCases.length} cases, up to ${repetitions} interleaved runs each…`)
    const times = await measure([...pageCases, ...searchCases], repetitions)
    const cell = (c: Case | undefined) => {
      const t = c && times.get(c)
      return t ? `${ms(quantile(t, 0.5))} / ${ms(quantile(t, 0.95))}` : '–'
    }
    const median = (c: Case | undefined) => quantile((c && times.get(c)) ?? [], 0.5)
    const ratio = (a: Case | undefined, b: Case | undefined) => (median(a) / median(b)).toFixed(2)

    console.log(
      `\nA page of ${limit} (ms, median / p95), first and deep in a cursor walk (at 90% of the list), 50-task vs 100,000-task user:\n`,
    )
    console.log('| sort order status | light first | light deep | heavy first | heavy deep | heavy / light, first | heavy / light, deep |')
    console.log('|---|---|---|---|---|---|---|')
    for (const shape of shapes) {
      const [lf, ld, hf, hd] = [
        `${light} ${label(shape)} first`,
        `${light} ${label(shape)} deep`,
        `${heavy} ${label(shape)} first`,
        `${heavy} ${label(shape)} deep`,
      ].map((name) => pageCell.get(name))
      console.log(`| ${label(shape)} | ${cell(lf)} | ${cell(ld)} | ${cell(hf)} | ${cell(hd)} | ${ratio(hf, lf)} | ${ratio(hd, ld)} |`)
    }

    console.log(`\nA search (q), first page of ${limit} unless a cursor is given (ms, median / p95), on the 100,000-task user unless said:`)
    console.log('generic = the prepared statement after its fifth execution; custom = planned for its parameters (prepare: false)\n')
    console.log('| search | matches | generic | custom | search / page, generic | search / page, custom |\n|---|---|---|---|---|---|')
    for (const r of searchRows) {
      console.log(
        `| ${r.name} | ${r.matches} | ${cell(r.search.generic)} | ${cell(r.search.custom)} | ${ratio(r.search.generic, r.page.generic)} | ${ratio(r.search.custom, r.page.custom)} |`,
      )
    }
  } finally {
    await generic.end()
    await custom.end()
  }
}

/** Follows listTasks's own `next` cursors (through JSON, as the routes do) until `position` tasks are behind. */
async function cursorAt(sql: Sql, user: string, o: Omit<ListOptions, 'limit'>, position: number): Promise<Position | undefined> {
  let after: Position | undefined
  for (let seen = 0; seen < position; ) {
    const limit = Math.min(500, position - seen)
    const { next } = await listTasks(sql, user, { ...o, limit, after })
    if (!next) break
    after = JSON.parse(JSON.stringify(next)) as Position
    seen += limit
  }
  return after
}

/**
 * Runs every case a few times (which also takes prepared statements past their fifth execution),
 * then in rounds, one run of each case per round, until each has `repetitions` timings or has used
 * about two seconds.
 */
async function measure(cases: Case[], repetitions: number): Promise<Map<Case, number[]>> {
  const budget = new Map<Case, number>()
  for (const c of cases) {
    const warm: number[] = []
    for (let i = 0; i < 7; i++) warm.push(await time(c))
    budget.set(c, Math.max(10, Math.min(repetitions, Math.floor(2000 / quantile(warm, 0.5)))))
  }
  const times = new Map(cases.map((c) => [c, [] as number[]]))
  for (let round = 0; round < repetitions; round++) {
    for (const c of cases) {
      const t = times.get(c) as number[]
      if (t.length < (budget.get(c) as number)) t.push(await time(c))
    }
  }
  return times
}

async function time(c: Case): Promise<number> {
  const started = performance.now()
  await c.run()
  return performance.now() - started
}

const label = ({ sort, order, status }: Shape) => `${sort} ${order} ${status}`
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)
const ms = (x: number) => x.toFixed(2)

function quantile(xs: number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await benchScale()
