// npm run bench: throughput and latency of the API on this machine, against an embedded
// PostgreSQL in a temporary directory (or BENCH_DATABASE_URL). Absolute numbers depend on the
// machine; compare the ratios printed at the end, which are measured in one run.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { pino } from 'pino'
import { createApp } from '../src/app.js'
import { createVerifier, mintToken } from '../src/auth.js'
import { connect } from '../src/db.js'
import { startEmbeddedPostgres } from '../src/embedded-postgres.js'
import { migrate } from '../src/migrate.js'

const seconds = Number(process.env.BENCH_SECONDS ?? 5)
const rows = Number(process.env.BENCH_ROWS ?? 50_000)
const auth = {
  secret: 'bench-secret-bench-secret-bench-secret',
  jwksUrl: undefined,
  issuer: undefined,
  audience: undefined,
  userClaim: 'sub',
}
const logger = pino({ level: 'silent' })

const scratch = mkdtempSync(join(tmpdir(), 'todo-api-bench-'))
chmodSync(scratch, 0o755)
const embedded = process.env.BENCH_DATABASE_URL ? undefined : await startEmbeddedPostgres(scratch, logger)
const url = process.env.BENCH_DATABASE_URL ?? (embedded?.url as string)
const sql = connect(url)

try {
  await migrate(url)
  const user = `bench-${Date.now()}`
  console.log(`seeding ${rows} tasks for one user and ${rows} for 100 others…`)
  await sql`
    insert into tasks (user_id, title, description, completed, created_at, updated_at)
    select ${user}, 'task ' || n, case when n % 3 = 0 then 'note ' || n end, n % 2 = 0,
           now() - n * interval '1 second', now() - n * interval '1 second'
    from generate_series(1, ${rows}) as n
  `
  await sql`
    insert into tasks (user_id, title) select 'other-' || (n % 100), 'other ' || n from generate_series(1, ${rows}) as n
  `
  await sql`analyze tasks`
  const token = await mintToken(auth, user, '1h')

  const results: Record<string, Record<string, autocannon.Result>> = {}
  for (const [mode, validateResponses] of [
    ['production', false],
    ['development', true],
  ] as const) {
    const app = createApp({ sql, verify: createVerifier(auth), config: { corsOrigins: [], validateResponses }, logger })
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
    const deep = await deepPage(base, headers, '/api/tasks?limit=500', Math.floor((rows * 0.9) / 500))
    const deepTitle = await deepPage(base, headers, '/api/tasks?limit=500&sort=title', Math.floor((rows * 0.9) / 500))
    const cases: Record<string, autocannon.Options> = {
      'GET /health': { url: `${base}/health` },
      'GET /api/tasks (first page)': { url: `${base}/api/tasks?limit=20`, headers },
      'GET /api/tasks (page at 90%)': { url: `${base}${deep.replace('limit=500', 'limit=20')}`, headers },
      'GET /api/tasks?sort=title (page at 90%)': { url: `${base}${deepTitle.replace('limit=500', 'limit=20')}`, headers },
      'GET /api/tasks?q=task 4999': { url: `${base}/api/tasks?limit=20&q=task%204999`, headers },
      'POST /api/tasks': { url: `${base}/api/tasks`, method: 'POST', headers, body: JSON.stringify({ title: 'bench' }) },
    }
    results[mode] = {}
    for (const [name, options] of Object.entries(cases)) {
      await autocannon({ ...options, duration: 1, connections: 10 }) // warm up (the validator compiles lazily)
      const result = await autocannon({ ...options, duration: seconds, connections: 10 })
      if (result.non2xx > 0 || result.errors > 0) throw new Error(`${name}: ${result.non2xx} non-2xx, ${result.errors} errors`)
      results[mode][name] = result
    }
    server.closeAllConnections()
    server.close()
  }

  console.log(`\n${seconds} s per case, 10 connections, ${rows} tasks for the user\n`)
  console.log('| case | mode | req/s | p50 ms | p99 ms |\n|---|---|---|---|---|')
  for (const [mode, cases] of Object.entries(results)) {
    for (const [name, r] of Object.entries(cases)) {
      console.log(`| ${name} | ${mode} | ${Math.round(r.requests.average)} | ${r.latency.p50} | ${r.latency.p99} |`)
    }
  }
  const rps = (mode: string, name: string) => results[mode]?.[name]?.requests.average ?? Number.NaN
  console.log('\nratios (same run):')
  console.log(
    `  page at 90% / first page throughput: ${(rps('production', 'GET /api/tasks (page at 90%)') / rps('production', 'GET /api/tasks (first page)')).toFixed(2)} (≈ 1: keyset pages cost the same anywhere)`,
  )
  for (const name of ['GET /api/tasks (first page)', 'POST /api/tasks']) {
    console.log(`  ${name}, with / without response validation: ${(rps('development', name) / rps('production', name)).toFixed(2)}`)
  }
} finally {
  await sql.end()
  await embedded?.stop()
  rmSync(scratch, { recursive: true, force: true })
}

async function deepPage(base: string, headers: Record<string, string>, start: string, hops: number): Promise<string> {
  let next = start
  for (let i = 0; i < hops; i++) {
    const response = await fetch(`${base}${next}`, { headers })
    const link = response.headers.get('link')?.match(/<([^>]+)>; rel="next"/)?.[1]
    if (!link) break
    next = link
  }
  return next
}
