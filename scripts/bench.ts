// npm run bench: the API as production runs it (`npm start`, NODE_ENV=production, its own
// processes) against a bare node:http + postgres.js server doing the same SQL
// (scripts/bench-baseline.mjs), in one run, on one PostgreSQL, loaded by wrk. Absolute numbers
// depend on the machine and whatever else runs on it; the ratios are what to compare.
// `npm run bench -- --scale` measures list pages and search at a million tasks instead (scripts/bench-scale.ts).
// `npm run bench -- --events` measures live updates between two API processes (scripts/bench-events.ts).
// `npm run bench -- --profile` runs the API as one process under `node --cpu-prof` and prints where its CPU time went.
import { execFile, execFileSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { pino } from 'pino'
import { mintToken } from '../src/auth.js'
import { startEmbeddedPostgres } from '../src/embedded-postgres.js'
import { migrate } from '../src/migrate.js'
import { type Server, startServer, treeOf } from './bench-processes.js'

const args = process.argv.slice(2)
if (args.includes('--scale')) {
  const { benchScale } = await import('./bench-scale.js')
  await benchScale()
  process.exit(0)
}
if (args.includes('--events')) {
  const { benchEvents } = await import('./bench-events.js')
  await benchEvents()
  process.exit(0)
}

const seconds = Number(process.env.BENCH_SECONDS ?? 5)
// Rounds alternate which server goes first, so that a slow spell of a shared machine weighs on both.
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const warmup = Number(process.env.BENCH_WARMUP_SECONDS ?? 3)
const workers = process.env.BENCH_WORKERS ?? '2'
const connections = 64
const users = 200
const tasksPerUser = 50
const secret = 'bench-secret-bench-secret-bench-secret'
const auth = { secret, issuer: undefined, audience: undefined, userClaim: 'sub' }

const profile = args.includes('--profile')
const wrk = findWrk()
const scratch = mkdtempSync(join(tmpdir(), 'todo-api-bench-'))
chmodSync(scratch, 0o755)
const embedded = process.env.BENCH_DATABASE_URL ? undefined : await startEmbeddedPostgres(join(scratch, 'data'), pino({ level: 'warn' }))
const databaseUrl = process.env.BENCH_DATABASE_URL ?? (embedded?.url as string)
const servers: Server[] = []

try {
  await migrate(databaseUrl)
  const env = { ...process.env, DATABASE_URL: databaseUrl, BETTER_AUTH_SECRET: secret, WORKERS: workers, DATA_DIR: scratch }
  const profiles = join(process.cwd(), 'test-artifacts/cpu-profiles', new Date().toISOString().replace(/[:.]/g, '-'))
  // Profiling runs npm start's own command with node's --cpu-prof added (npm cannot pass it on).
  const start = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: { start: string } }).scripts.start
  const api = profile
    ? await startServer(
        scratch,
        'todo-api',
        'sh',
        ['-c', start.replace('exec node ', `exec node --cpu-prof --cpu-prof-dir=${profiles} `)],
        { ...env, NODE_ENV: 'production', PORT: '18080', WORKERS: '1' },
        18080,
      )
    : await startServer(scratch, 'todo-api', 'npm', ['start'], { ...env, NODE_ENV: 'production', PORT: '18080' }, 18080)
  const bare = await startServer(
    scratch,
    'bare node:http',
    process.execPath,
    ['scripts/bench-baseline.mjs'],
    { ...env, PORT: '18081' },
    18081,
  )
  servers.push(api, bare)

  console.log(`seeding ${users} users × ${tasksPerUser} tasks through the API…`)
  const seeded = await seed(api.url)
  const scripts = wrkScripts(seeded)

  const results: Result[] = []
  const only = process.env.BENCH_WORKLOADS?.split(',')
  for (const [workload, script] of Object.entries(scripts).filter(([name]) => !only || only.includes(name))) {
    const runs = new Map<Server, (Awaited<ReturnType<typeof runWrk>> & { cpu: number })[]>([
      [bare, []],
      [api, []],
    ])
    for (const server of [bare, api]) {
      await runWrk(server.url, script, warmup)
      server.peakRss = 0 // memory is measured under load, after start-up and warm-up
      server.peakPss = 0
    }
    for (let round = 0; round < rounds; round++) {
      for (const server of round % 2 === 0 ? [bare, api] : [api, bare]) {
        const cpuBefore = treeOf(server.pid).cpu
        const run = await runWrk(server.url, script, seconds)
        runs.get(server)?.push({ ...run, cpu: treeOf(server.pid).cpu - cpuBefore })
        console.log(`${workload.padEnd(8)} ${server.name.padEnd(15)} round ${round + 1}: ${Math.round(run.rps)} req/s, p99 ${run.p99} ms`)
      }
    }
    for (const server of [bare, api]) {
      const all = runs.get(server) ?? []
      const requests = all.reduce((sum, r) => sum + r.rps * seconds, 0)
      results.push({
        workload,
        server: server.name,
        rps: requests / (seconds * all.length),
        p50: median(all.map((r) => r.p50)),
        p99: median(all.map((r) => r.p99)),
        non2xx: all.reduce((sum, r) => sum + r.non2xx, 0),
        errors: all.reduce((sum, r) => sum + r.errors, 0),
        cpuMicros: (all.reduce((sum, r) => sum + r.cpu, 0) * 1e6) / requests,
      })
      server.peaks[workload] = { rss: server.peakRss, pss: server.peakPss }
    }
  }
  report(results, api, bare)
  if (profile) {
    await api.stop()
    summarize(profiles)
  }
} finally {
  for (const server of servers) await server.stop()
  await embedded?.stop()
  rmSync(scratch, { recursive: true, force: true })
}

interface Result {
  workload: string
  server: string
  rps: number
  p50: number
  p99: number
  non2xx: number
  errors: number
  /** CPU time (user + system) of the server's processes per request served. */
  cpuMicros: number
}

// wrk, a C load generator, leaves the cores to the servers (a Node load generator would take one of them).
// As root on Debian or Ubuntu it is installed when missing, as .ci/run installs what the tests need.
function findWrk(): string {
  const which = () => execFileSync('sh', ['-c', 'command -v wrk || true'], { encoding: 'utf8' }).trim()
  if (!which() && process.getuid?.() === 0 && execFileSync('sh', ['-c', 'command -v apt-get || true'], { encoding: 'utf8' }).trim()) {
    console.log('installing wrk (apt-get install wrk)…')
    execFileSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null'], {
      stdio: 'inherit',
    })
  }
  const wrk = which()
  if (!wrk) {
    console.error(
      'npm run bench needs wrk, a C load generator that leaves the cores to the servers: apt-get install wrk (or brew install wrk)',
    )
    process.exit(1)
  }
  return wrk
}

/** Creates the tasks through the API, as users would, and returns each user's token and task ids. */
async function seed(url: string) {
  const seeded = await Promise.all(
    Array.from({ length: users }, async (_, u) => {
      const token = await mintToken(auth, `bench-user-${u}`, '2h')
      const ids: number[] = []
      for (let t = 0; t < tasksPerUser; t++) {
        const response = await fetch(`${url}/api/tasks`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ title: `Task ${t} of user ${u}`, description: t % 3 === 0 ? `note ${t}` : null, completed: t % 2 === 0 }),
        })
        if (response.status !== 201) throw new Error(`seeding: ${response.status} ${await response.text()}`)
        ids.push(((await response.json()) as { id: number }).id)
      }
      return { token, ids }
    }),
  )
  return seeded
}

/** One Lua script per workload: each request picks a random user (and one of its tasks). */
function wrkScripts(seeded: { token: string; ids: number[] }[]): Record<string, string> {
  const tokens = `local tokens = {${seeded.map((s) => `"${s.token}"`).join(',')}}`
  const ids = `local ids = {${seeded.map((s) => `{${s.ids.join(',')}}`).join(',')}}`
  const random = 'math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))'
  const workloads: Record<string, string> = {
    list: `${tokens}\n${random}
request = function()
  return wrk.format("GET", "/api/tasks?limit=20", { ["Authorization"] = "Bearer " .. tokens[math.random(#tokens)] })
end`,
    'get-one': `${tokens}\n${ids}\n${random}
request = function()
  local u = math.random(#tokens)
  local mine = ids[u]
  return wrk.format("GET", "/api/tasks/" .. mine[math.random(#mine)], { ["Authorization"] = "Bearer " .. tokens[u] })
end`,
    create: `${tokens}\n${random}
local body = '{"title":"Write the benchmark report","description":"with the figures of one run"}'
request = function()
  return wrk.format("POST", "/api/tasks", { ["Authorization"] = "Bearer " .. tokens[math.random(#tokens)], ["Content-Type"] = "application/json" }, body)
end`,
  }
  return Object.fromEntries(
    Object.entries(workloads).map(([name, lua]) => {
      const file = join(scratch, `${name}.lua`)
      writeFileSync(file, lua)
      return [name, file]
    }),
  )
}

// Asynchronous, so that the memory sampler keeps running while wrk loads the server.
async function runWrk(url: string, script: string, duration: number) {
  const { stdout: out } = await promisify(execFile)(wrk, ['-t2', `-c${connections}`, `-d${duration}s`, '--latency', '-s', script, url])
  const ms = (label: string) => {
    const match = new RegExp(`^\\s*${label}\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(out)
    if (!match) return Number.NaN
    return Number(match[1]) * { us: 0.001, ms: 1, s: 1000 }[match[2] as 'us' | 'ms' | 's']
  }
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]),
    p50: ms('50%'),
    p99: ms('99%'),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    errors: socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
  }
}

function report(results: Result[], api: Server, bare: Server) {
  const mib = (bytes: number) => `${Math.round(bytes / 2 ** 20)}`
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU'
  console.log(`\n${new Date().toISOString().slice(0, 10)}, ${cpus().length} × ${cpu}, Node ${process.version}`)
  console.log(
    `wrk -t2 -c${connections}, ${rounds} rounds of ${seconds} s per case after ${warmup} s of warm-up (req/s over all rounds, p50/p99 their median), ${users} users × ${tasksPerUser} tasks, ${workers} workers each\n`,
  )
  console.log('| workload | server | req/s | p50 ms | p99 ms | non-2xx | errors | server CPU µs/req | peak PSS MiB | peak RSS MiB |')
  console.log('|---|---|---|---|---|---|---|---|---|---|')
  for (const r of results) {
    const peak = (r.server === api.name ? api : bare).peaks[r.workload] ?? { rss: 0, pss: 0 }
    console.log(
      `| ${r.workload} | ${r.server} | ${Math.round(r.rps)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.non2xx} | ${r.errors} | ${Math.round(r.cpuMicros)} | ${mib(peak.pss)} | ${mib(peak.rss)} |`,
    )
  }
  console.log('\n| workload | throughput (≥ 0.8×) | p99 (≤ 1.5×) |\n|---|---|---|')
  let ok = true
  for (const workload of new Set(results.map((r) => r.workload))) {
    const a = results.find((r) => r.workload === workload && r.server === api.name) as Result
    const b = results.find((r) => r.workload === workload && r.server === bare.name) as Result
    const throughput = a.rps / b.rps
    const p99 = a.p99 / b.p99
    ok &&= throughput >= 0.8 && p99 <= 1.5
    console.log(`| ${workload} | ${throughput.toFixed(2)}× | ${p99.toFixed(2)}× |`)
  }
  const pss = Math.max(...Object.values(api.peaks).map((p) => p.pss))
  const rss = Math.max(...Object.values(api.peaks).map((p) => p.rss))
  ok &&= pss <= 300 * 2 ** 20
  console.log(
    `\ntodo-api peak memory under load, npm and every server process: ${mib(pss)} MiB PSS (≤ 300), ${mib(rss)} MiB summed RSS (counts the shared node binary once per process)`,
  )
  const invalid = results.filter((r) => r.non2xx > 0 || r.errors > 0)
  if (invalid.length > 0) {
    console.log(`INVALID RUN: non-2xx responses or socket errors in ${invalid.map((r) => `${r.workload}/${r.server}`).join(', ')}`)
    process.exitCode = 1
  } else {
    console.log(ok ? 'every target holds' : 'some target does not hold')
  }
}

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
}

/** Self time per function and per package, from the .cpuprofile files V8 wrote at exit. */
function summarize(dir: string) {
  const byFunction = new Map<string, number>()
  const byPackage = new Map<string, number>()
  let total = 0
  for (const file of readdirSync(dir)) {
    const { nodes, samples, timeDeltas } = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
      nodes: ProfileNode[]
      samples: number[]
      timeDeltas: number[]
    }
    const frames = new Map(nodes.map((n) => [n.id, n.callFrame]))
    samples.forEach((id, i) => {
      const frame = frames.get(id)
      const dt = timeDeltas[i] ?? 0
      if (!frame) return
      const where = frame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/dist\//, 'dist/')
      const name = `${frame.functionName || '(anonymous)'} ${where}:${frame.lineNumber + 1}`
      const pkg = frame.url.includes('node_modules/')
        ? (/node_modules\/((@[^/]+\/)?[^/]+)/.exec(frame.url)?.[1] ?? '?')
        : frame.url.includes('/dist/')
          ? 'todo-api'
          : frame.url === ''
            ? frame.functionName || '(native)'
            : 'node:internal'
      byFunction.set(name, (byFunction.get(name) ?? 0) + dt)
      byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + dt)
      total += dt
    })
  }
  const top = (map: Map<string, number>, n: number) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `  ${((100 * v) / total).toFixed(1).padStart(5)} %  ${k}`)
  console.log(`\nCPU profile of the API (${dir}), self time by package:\n${top(byPackage, 20).join('\n')}`)
  console.log(`\nby function:\n${top(byFunction, 40).join('\n')}`)
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}
