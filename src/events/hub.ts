import type { ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import { connect, type Sql } from '../db.js'
import { Problem } from '../problems.js'
import { channel, eventsAfter, latestEvents, notifyUsers, startOf, type TaskEvent } from './outbox.js'

export interface EventHubOptions {
  /** The API's pool: events are read through it. */
  sql: Sql
  /** A session connection to the same database, for LISTEN (a transaction pooler cannot carry one). */
  listenUrl: string
  logger: Logger
  /** A comment line this often keeps proxies from closing an idle stream (default 15 s). */
  heartbeatMs?: number
  /** Open streams per user in this process (default 16); more are refused with 429. */
  maxStreamsPerUser?: number
  /** At most one NOTIFY this often from this process (default 20 ms); the changes between go out together. */
  notifyGapMs?: number
}

/** The event streams one API process holds, fed by one LISTEN connection. */
export interface EventHub {
  /**
   * Starts streaming the user's events on `res` after `lastEventId` (or from now), once the answer's
   * headers are out: a change committed after the client has them is on its stream.
   */
  open(res: ServerResponse, user_id: string, lastEventId: number | undefined): Promise<void>
  /** Says that a change of the user's tasks has committed: every process's streams of the user get its events. */
  changed(user_id: string): void
  /** Resolves once LISTEN is in place (tests wait for it). */
  readonly listening: Promise<void>
  /** Ends every stream and stops listening (SIGTERM: shutdown does not wait on open streams). */
  close(): Promise<void>
}

interface Stream {
  res: ServerResponse
  /** The id of the last event this stream has (sent, or known to the client). */
  last: number
}

/** A user's streams in this process, and whether their new events are being read. */
interface Feed {
  streams: Set<Stream>
  reading: boolean
  again: boolean
}

// Events are read this many at a time.
const batch = 500
// A client that stops reading is cut off once this much waits for it; it reconnects with Last-Event-ID.
const maxBuffered = 1 << 20

export function createEventHub({
  sql,
  listenUrl,
  logger,
  heartbeatMs = 15_000,
  maxStreamsPerUser = 16,
  notifyGapMs = 20,
}: EventHubOptions): EventHub {
  const feeds = new Map<string, Feed>()
  let closed = false

  const write = (stream: Stream, text: string) => {
    if (stream.res.writableLength > maxBuffered) stream.res.destroy()
    else stream.res.write(text)
  }

  // Sends each stream of the user the events it does not have yet, in order; a notification that
  // arrives meanwhile is read right after, so none waits for the next one.
  async function deliver(user_id: string): Promise<void> {
    const feed = feeds.get(user_id)
    if (!feed) return
    if (feed.reading) {
      feed.again = true
      return
    }
    feed.reading = true
    try {
      do {
        feed.again = false
        let events: TaskEvent[]
        do {
          if (feed.streams.size === 0) return
          const from = Math.min(...Array.from(feed.streams, (s) => s.last))
          events = await eventsAfter(sql, user_id, from, batch)
          for (const stream of feed.streams) {
            for (const event of events) {
              if (event.id <= stream.last) continue
              write(stream, `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`)
              stream.last = event.id
            }
          }
        } while (events.length === batch)
      } while (feed.again)
    } catch (error) {
      // The database is away: the listener catches every stream up once it is back.
      logger.warn({ err: error, user_id }, 'could not read task events')
    } finally {
      feed.reading = false
    }
  }

  const listener = createListener(listenUrl, logger, {
    notified: (user_id) => void deliver(user_id),
    // Notifications sent while the connection was down are lost: every stream reads what it missed.
    listening: () => {
      for (const user_id of feeds.keys()) void deliver(user_id)
    },
  })

  // Users whose changes have committed, told to every process in one notifying transaction. A write
  // with none sent in the last notifyGapMs is told at once; under load the changes of each gap go
  // out together, so writes cost the database one NOTIFY per gap and process, not one per write
  // (a stream hears of a change at most notifyGapMs later; SPEC: within a second).
  const changedUsers = new Set<string>()
  let notifying: Promise<void> | undefined
  let waiting: NodeJS.Timeout | undefined
  let lastNotified = Number.NEGATIVE_INFINITY
  function notify(): void {
    if (notifying || waiting || changedUsers.size === 0) return
    const wait = lastNotified + notifyGapMs - performance.now()
    if (wait > 0 && !closed) {
      waiting = setTimeout(() => {
        waiting = undefined
        notify()
      }, wait)
      return
    }
    lastNotified = performance.now()
    const users = [...changedUsers]
    changedUsers.clear()
    notifying = notifyUsers(sql, users)
      .catch((error: unknown) => logger.warn({ err: error }, 'could not notify task events; streams get them with the next sweep'))
      .finally(() => {
        notifying = undefined
        notify()
      })
  }

  // Each heartbeat also sweeps: events whose notification was lost (a process that crashed right
  // after a commit, a change made outside the API) reach the streams within one period.
  const heartbeat = setInterval(() => {
    for (const feed of feeds.values()) for (const stream of feed.streams) write(stream, ':\n\n')
    if (feeds.size === 0) return
    latestEvents(sql, [...feeds.keys()]).then(
      (latest) => {
        for (const [user_id, id] of latest) {
          const feed = feeds.get(user_id)
          if (feed && [...feed.streams].some((s) => s.last < id)) void deliver(user_id)
        }
      },
      (error: unknown) => logger.warn({ err: error }, 'could not sweep task events'),
    )
  }, heartbeatMs).unref()

  return {
    listening: listener.listening,

    async open(res, user_id, lastEventId) {
      if (closed) throw new Problem('unavailable', 'The server is shutting down; reconnect shortly.')
      if ((feeds.get(user_id)?.streams.size ?? 0) >= maxStreamsPerUser) {
        throw new Problem('rate-limited', `This user already has ${maxStreamsPerUser} event streams open here; close one first.`, {
          headers: { 'Retry-After': '10' },
        })
      }
      const start = await startOf(sql, user_id, lastEventId)
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-store',
        // Proxies such as nginx would otherwise hold events back to fill their buffers.
        'X-Accel-Buffering': 'no',
      })
      if (res.req.method === 'HEAD' || res.destroyed) return void res.end()
      // Some of what the client missed may be gone: it reloads, then goes on from the latest event.
      const stream: Stream = { res, last: start.pruned ? start.latest : (lastEventId ?? start.latest) }
      // EventSource (and the SDK) reconnect after `retry` ms when a stream breaks, from the last id
      // they have: this one from the start (an id without data sets it and dispatches nothing), so
      // that even a stream that breaks before its first event resumes without losing any.
      res.write(`retry: 1000\nid: ${stream.last}\n\n`)
      if (start.pruned) res.write(`id: ${stream.last}\nevent: reload\ndata: {}\n\n`)
      const feed = feeds.get(user_id) ?? { streams: new Set<Stream>(), reading: false, again: false }
      feeds.set(user_id, feed)
      feed.streams.add(stream)
      res.once('close', () => {
        feed.streams.delete(stream)
        if (feed.streams.size === 0 && feeds.get(user_id) === feed) feeds.delete(user_id)
      })
      if (stream.last < start.latest) void deliver(user_id)
    },

    changed(user_id) {
      changedUsers.add(user_id)
      notify()
    },

    async close() {
      closed = true
      // What has committed is told to the other processes before the pool closes (a database that
      // does not answer holds shutdown up for a second at most).
      const deadline = Date.now() + 1000
      clearTimeout(waiting)
      waiting = undefined
      notify()
      while (notifying && Date.now() < deadline) await Promise.race([notifying, new Promise((resolve) => setTimeout(resolve, 100))])
      clearInterval(heartbeat)
      for (const feed of feeds.values()) for (const stream of feed.streams) stream.res.end()
      feeds.clear()
      await listener.close()
    },
  }
}

/**
 * LISTEN on a connection of its own, kept up: when it drops (a database restart, a network cut), it
 * listens again as soon as the database answers, and says so, so that streams catch up.
 */
function createListener(url: string, logger: Logger, on: { notified: (payload: string) => void; listening: () => void }) {
  let closed = false
  let relistening = false
  const sql = connect(url, {
    max: 1,
    idle_timeout: 0,
    max_lifetime: null,
    prepare: false,
    connection: { application_name: 'todo-api events' },
    onnotify: (name: string, payload: string) => {
      if (name === channel) on.notified(payload)
    },
    onclose: () => {
      if (!closed) void listen()
    },
  } as Parameters<typeof connect>[1])

  async function listen(): Promise<void> {
    if (relistening) return
    relistening = true
    try {
      for (let attempt = 0; !closed; attempt++) {
        try {
          await sql`listen task_events`
          on.listening()
          return
        } catch (error) {
          if (attempt === 0) logger.warn({ err: error }, 'live updates: cannot LISTEN; retrying until the database answers')
          await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 2000)))
        }
      }
    } finally {
      relistening = false
    }
  }

  return {
    listening: listen(),
    async close() {
      closed = true
      await sql.end({ timeout: 1 })
    },
  }
}
