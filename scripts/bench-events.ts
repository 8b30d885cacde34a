// npm run bench -- --events: live updates between two API processes as production runs them
// (`npm start`, NODE_ENV=production, one PostgreSQL). Writes go to one process, streams are held by
// the other, so every event travels through the outbox and LISTEN/NOTIFY:
// 1. the delay from sending a write to receiving its event, over BENCH_EVENT_WRITES writes (1,000);
// 2. BENCH_STREAMS open streams (4 per user, like tabs) on one process: its memory, and the delay
//    of events while it holds them all.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { type IncomingMessage, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pino } from 'pino'
import { mintToken } from '../src/auth.js'
import { startEmbeddedPostgres } from '../src/embedded-postgres.js'
import { migrate } from '../src/migrate.js'
import { type Server, startServer, treeOf } from './bench-processes.js'

const writes = Number(process.env.BENCH_EVENT_WRITES ?? 1000)
const streamCount = Number(process.env.BENCH_STREAMS ?? 5000)
const streamsPerUser = 4
const secret = 'bench-secret-bench-secret-bench-secret'
const auth = { secret, issuer: undefined, audience: undefined, userClaim: 'sub' }

/** A stream's events as they arrive: each event's task title (or id), and the time it came. */
interface Stream {
  response: IncomingMessage
  onEvent?: (data: { title?: string; id: number }) => void
}

export async function benchEvents(): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'todo-api-bench-events-'))
  chmodSync(scratch, 0o755)
  const embedded = await startEmbeddedPostgres(join(scratch, 'data'), pino({ level: 'warn' }))
  const servers: Server[] = []
  const streams: Stream[] = []
  try {
    await migrate(embedded.url)
    const env = {
      ...process.env,
      DATABASE_URL: embedded.url,
      BETTER_AUTH_SECRET: secret,
      WORKERS: '1',
      NODE_ENV: 'production',
      DATA_DIR: scratch,
    }
    // One after the other: each `npm start` builds dist/ first.
    const writer = await startServer(scratch, 'writer', 'npm', ['start'], { ...env, PORT: '18090' }, 18090)
    servers.push(writer)
    const holder = await startServer(scratch, 'streams', 'npm', ['start'], { ...env, PORT: '18091' }, 18091)
    servers.push(holder)

    // 1. Write → event, one write at a time, the stream on the other process.
    const token = await mintToken(auth, 'events-bench-writer', '2h')
    const stream = await openStream(holder.url, token)
    streams.push(stream)
    const delays: number[] = []
    const answers: number[] = []
    for (let i = 0; i < writes; i++) {
      const title = `write ${i}`
      const sent = performance.now()
      const arrived = new Promise<number>((resolve) => {
        stream.onEvent = (data) => data.title === title && resolve(performance.now())
      })
      const answered = post(writer.url, token, title).then(() => performance.now())
      const [eventAt, answerAt] = await Promise.all([arrived, answered])
      delays.push(eventAt - sent)
      answers.push(answerAt - sent)
    }
    console.log(`\nwrite on one process → its event on a stream held by the other, ${writes} writes one at a time:`)
    console.log(`  event received   p50 ${ms(percentile(delays, 50))}  p99 ${ms(percentile(delays, 99))}  (from sending the write)`)
    console.log(`  write answered   p50 ${ms(percentile(answers, 50))}  p99 ${ms(percentile(answers, 99))}`)

    // 2. Many open streams on one process.
    const before = treeOf(holder.pid)
    const users = Math.ceil(streamCount / streamsPerUser)
    const tokens = await Promise.all(Array.from({ length: users }, (_, u) => mintToken(auth, `events-bench-${u}`, '2h')))
    const byUser: Stream[][] = tokens.map(() => [])
    for (let opened = 0; opened < streamCount; ) {
      const batch = Array.from({ length: Math.min(200, streamCount - opened) }, (_, i) => opened + i)
      const made = await Promise.all(batch.map((n) => openStream(holder.url, tokens[n % users] as string)))
      for (const [i, s] of made.entries()) byUser[(batch[i] as number) % users]?.push(s)
      streams.push(...made)
      opened += batch.length
    }
    await new Promise((resolve) => setTimeout(resolve, 2000)) // let the process settle after the burst
    const after = treeOf(holder.pid)
    console.log(`\n${streamCount} open streams (${users} users × ${streamsPerUser}) on one API process:`)
    console.log(`  memory  RSS ${mib(before.rss)} → ${mib(after.rss)}, PSS ${mib(before.pss)} → ${mib(after.pss)}`)
    console.log(`  per stream ${((after.pss - before.pss) / streamCount / 1024).toFixed(1)} KiB (PSS)`)

    // Events still arrive, on every stream of the user, while the process holds all of them.
    const sample = Array.from({ length: 100 }, (_, i) => Math.floor((i * users) / 100))
    const fanout: number[] = []
    for (const u of sample) {
      const title = `fan-out ${u}`
      const sent = performance.now()
      const arrivals = (byUser[u] ?? []).map(
        (s) =>
          new Promise<number>((resolve) => {
            s.onEvent = (data) => data.title === title && resolve(performance.now())
          }),
      )
      await post(writer.url, tokens[u] as string, title)
      for (const at of await Promise.all(arrivals)) fanout.push(at - sent)
    }
    console.log(
      `  event received on each of the user's ${streamsPerUser} streams, 100 writes: p50 ${ms(percentile(fanout, 50))}  p99 ${ms(percentile(fanout, 99))}`,
    )
  } finally {
    for (const s of streams) s.response.destroy()
    for (const server of servers) await server.stop()
    await embedded.stop()
    rmSync(scratch, { recursive: true, force: true })
  }
}

/** Opens a stream (its own connection) and resolves once its headers are in: from then on it is live. */
function openStream(url: string, token: string): Promise<Stream> {
  return new Promise((resolve, reject) => {
    request(`${url}/api/tasks/events`, { agent: false, headers: { Authorization: `Bearer ${token}` } }, (response) => {
      if (response.statusCode !== 200) return reject(new Error(`stream: HTTP ${response.statusCode}`))
      const stream: Stream = { response }
      let buffer = ''
      response.setEncoding('utf8').on('data', (chunk: string) => {
        buffer += chunk
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const data = /^data: (.*)$/m.exec(buffer.slice(0, end))?.[1]
          buffer = buffer.slice(end + 2)
          if (data) stream.onEvent?.(JSON.parse(data) as { title?: string; id: number })
        }
      })
      resolve(stream)
    })
      .on('error', reject)
      .end()
  })
}

async function post(url: string, token: string, title: string): Promise<void> {
  const response = await fetch(`${url}/api/tasks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ title }),
  })
  if (response.status !== 201) throw new Error(`write: HTTP ${response.status} ${await response.text()}`)
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

const ms = (value: number) => `${value.toFixed(1)} ms`
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`
