import { BlockList, isIP } from 'node:net'
import type { Request, RequestHandler, Response } from 'express'
import type { Logger } from 'pino'
import type { Config, RateLimit } from './config.js'
import type { Sql } from './db.js'
import { Problem } from './problems.js'

/**
 * Fixed-window request limits per user and per client address, shared by every API process through
 * PostgreSQL without a query per request. Each process counts in memory and, every `flushMs`, sends
 * what it counted since (all keys in one statement) and gets back each key's total over all
 * processes. A request is refused when that total plus what this process counted since reaches the
 * limit. Between two flushes the processes do not see each other's requests: together they may let
 * through about what one key gets in one flush interval beyond the limit, per process. That is the
 * price of answering from memory; the limits are against abuse, not for billing.
 */
export interface RateLimiter {
  /** Middleware for every route but /health and /ready: counts the client address; 429 over its limit. Undefined when that limit is off. */
  readonly byAddress: RequestHandler | undefined
  /**
   * Wraps the contract's bearer security handler: once it has set req.user_id, counts the user; 429
   * over the limit. The handler itself when that limit is off.
   */
  byUser(authenticate: (req: Request) => boolean | Promise<boolean>): (req: Request) => boolean | Promise<boolean>
  /** Resolves when a flush that began after the call has ended (for tests: the counts are then in PostgreSQL). */
  flushed(): Promise<void>
  /** Stops the timer and writes what is still counted only here. */
  close(): Promise<void>
}

export interface RateLimitOptions {
  logger?: Logger
  /** How often counts go to PostgreSQL; default 250 ms. */
  flushMs?: number
}

interface Policy extends RateLimit {
  /** `for this user`, `from this address`: for the problem's detail. */
  readonly subject: string
  /** RateLimit-Policy. */
  readonly header: string
}

interface Counter {
  /** Its row's key: `user:<id>` or `ip:<address>` (an IPv6 client counts by its /56). */
  readonly key: string
  readonly policy: Policy
  /** The end of the window counted, in seconds since the epoch. */
  resetsAt: number
  /** All processes' requests in the window, as PostgreSQL last answered. */
  total: number
  /** Requests counted here and not sent yet. */
  pending: number
  /** Requests in the statement on its way. */
  sending: number
  /** In the batch of the next flush. */
  queued: boolean
}

// IPv6 clients usually hold a whole prefix (a home gets a /56 or a /48): counted per address, one
// client could take a fresh limit for each of its 2^72 addresses.
const ipv6PrefixBits = 56
// Keys read back at every flush even when this process has nothing to add: those that have used
// half their limit, so that a process that saw a key go quiet still refuses it once others used it up.
const watchedFraction = 0.5
const sweepMs = 10_000
const pruneMs = 60_000

/** One per process, on the API's pool; a limiter with both limits off does nothing and starts no timer. */
export function createRateLimiter(
  sql: Sql,
  config: Pick<Config, 'rateLimit' | 'trustProxy'>,
  { logger, flushMs = 250 }: RateLimitOptions = {},
): RateLimiter {
  const { perUser, perIp, exempt } = config.rateLimit
  if (!perUser && !perIp) {
    return { byAddress: undefined, byUser: (authenticate) => authenticate, flushed: async () => {}, close: async () => {} }
  }
  const userPolicy = perUser && policy(perUser, 'for this user')
  const ipPolicy = perIp && policy(perIp, 'from this address')
  const users = new Map<string, Counter>()
  // A client's address as given (IPv4-mapped, or one of an IPv6 prefix) → its counter, or null when exempt.
  const addresses = new Map<string, Counter | null>()
  const prefixes = new Map<string, Counter>()
  const exemptList = blockList(exempt)
  const watched = new Set<Counter>()
  let queue: Counter[] = []

  function count(c: Counter, res: Response | undefined): void {
    const now = Date.now() / 1000
    const { limit, windowSeconds } = c.policy
    const resetsAt = (Math.floor(now / windowSeconds) + 1) * windowSeconds
    if (c.resetsAt !== resetsAt) {
      c.resetsAt = resetsAt
      c.total = c.pending = c.sending = 0
    }
    const used = c.total + c.sending + c.pending
    const reset = Math.ceil(resetsAt - now)
    if (used >= limit) throw refusal(c.policy, reset)
    c.pending++
    if (!c.queued) {
      c.queued = true
      queue.push(c)
    }
    // The tighter of the two limits is the one a client needs to see.
    const remaining = limit - used - 1
    const shown = res?.getHeader('RateLimit-Remaining') as number | undefined
    if (res && (shown === undefined || remaining < shown)) {
      res.setHeader('RateLimit-Limit', limit)
      res.setHeader('RateLimit-Remaining', remaining)
      res.setHeader('RateLimit-Reset', reset)
      res.setHeader('RateLimit-Policy', c.policy.header)
    }
  }

  function counter(map: Map<string, Counter>, id: string, kind: 'user' | 'ip', policy: Policy): Counter {
    let c = map.get(id)
    if (c === undefined) {
      c = { key: `${kind}:${id}`, policy, resetsAt: 0, total: 0, pending: 0, sending: 0, queued: false }
      map.set(id, c)
    }
    return c
  }

  function addressCounter(address: string, policy: Policy): Counter | null {
    let c = addresses.get(address)
    if (c === undefined) {
      const family = isIP(address)
      if (family !== 0 && exemptList.check(address, family === 6 ? 'ipv6' : 'ipv4')) c = null
      else c = counter(prefixes, clientPrefix(address), 'ip', policy)
      addresses.set(address, c)
    }
    return c
  }

  // Only behind a configured proxy is the client address worth req.ip's parsing of X-Forwarded-For.
  const behindProxy = config.trustProxy !== false
  const byAddress: RequestHandler | undefined =
    ipPolicy &&
    ((req, res, next) => {
      if (req.path === '/health' || req.path === '/ready') return next()
      const address = behindProxy ? req.ip : req.socket.remoteAddress
      const c = address === undefined ? null : addressCounter(address, ipPolicy)
      if (c !== null) count(c, res)
      next()
    })

  function byUser(authenticate: (req: Request) => boolean | Promise<boolean>): (req: Request) => boolean | Promise<boolean> {
    if (!userPolicy) return authenticate
    const counted = (req: Request): true => {
      const user_id = req.user_id as string
      try {
        count(counter(users, user_id, 'user', userPolicy), req.res)
      } catch (error) {
        // The validator re-wraps what a security handler throws; the error mapper looks here first.
        req.authProblem = error as Problem
        throw error
      }
      return true
    }
    // Synchronous when authenticate is (a token verified before).
    return (req) => {
      const authenticated = authenticate(req)
      return authenticated instanceof Promise ? authenticated.then(() => counted(req)) : counted(req)
    }
  }

  let writing: Promise<void> | undefined
  let waiting: (() => void)[] = []
  let failing = false
  let nextSweep = Date.now() + sweepMs
  let nextPrune = Date.now() + pruneMs * Math.random()

  const flush = (): Promise<void> => {
    writing ??= write().finally(() => {
      writing = undefined
    })
    return writing
  }
  const timer = setInterval(flush, flushMs).unref()

  async function write(): Promise<void> {
    const waiters = waiting
    waiting = []
    const batch = queue
    queue = []
    const now = Date.now()
    const keys: string[] = []
    const resets: number[] = []
    const hits: number[] = []
    for (const c of batch) {
      c.queued = false
      keys.push(c.key)
      resets.push(c.resetsAt)
      hits.push(c.pending)
      c.sending = c.pending
      c.pending = 0
    }
    const reread = [...watched].filter((c) => c.sending === 0 && c.resetsAt > now / 1000)
    try {
      if (batch.length > 0 || reread.length > 0) {
        const byKey = new Map([...batch, ...reread].map((c) => [c.key, c]))
        // Rows are added in key order, so that two processes writing the same keys at once lock
        // them in the same order and never deadlock.
        const totals = await sql<{ key: string; resets_at: number; hits: number }[]>`
          with added as (
            insert into rate_limits as r (key, resets_at, hits)
            select * from unnest(${keys}::text[], ${resets}::int8[], ${hits}::int4[]) order by 1, 2
            on conflict (key, resets_at) do update set hits = r.hits + excluded.hits
            returning key, resets_at, hits
          )
          select key, resets_at, hits from added
          union all
          select key, resets_at, hits from rate_limits
          where (key, resets_at) in (select * from unnest(${reread.map((c) => c.key)}::text[], ${reread.map((c) => c.resetsAt)}::int8[]))`
        for (const row of totals) {
          const c = byKey.get(row.key)
          if (c === undefined || c.resetsAt !== row.resets_at) continue // its window ended meanwhile
          c.total = row.hits
          c.sending = 0
          if (c.total + c.pending >= c.policy.limit * watchedFraction) watched.add(c)
        }
        if (failing) logger?.info('rate limits: counting across processes again')
        failing = false
      }
      if (now >= nextPrune) {
        nextPrune = now + pruneMs
        await sql`delete from rate_limits where resets_at < ${Math.floor(now / 1000) - 60}`
      }
    } catch (error) {
      // PostgreSQL is away: go on counting here, and send these requests with the next flush.
      batch.forEach((c, i) => {
        if (c.resetsAt !== resets[i]) return
        c.pending += c.sending
        c.sending = 0
        if (!c.queued) {
          c.queued = true
          queue.push(c)
        }
      })
      if (!failing) logger?.warn({ err: error }, 'rate limits: cannot reach PostgreSQL; counting in this process only until it answers')
      failing = true
    } finally {
      if (now >= nextSweep) {
        nextSweep = now + sweepMs
        sweep(now / 1000)
      }
      for (const resolve of waiters) resolve()
    }
  }

  // Forgets the windows that have ended (and which addresses are exempt, as the sets may be large).
  function sweep(now: number): void {
    const ended = (c: Counter) => c.resetsAt <= now && !c.queued && c.sending === 0
    for (const [id, c] of users) if (ended(c)) users.delete(id)
    for (const [key, c] of prefixes) if (ended(c)) prefixes.delete(key)
    for (const [address, c] of addresses) if (c === null || ended(c)) addresses.delete(address)
    for (const c of watched) if (c.resetsAt <= now) watched.delete(c)
  }

  return {
    byAddress,
    byUser,
    flushed: () => new Promise((resolve) => waiting.push(resolve)),
    async close() {
      clearInterval(timer)
      await writing
      await flush()
    },
  }
}

function policy(limit: RateLimit, subject: string): Policy {
  return { ...limit, subject, header: `${limit.limit};w=${limit.windowSeconds}` }
}

function refusal(policy: Policy, reset: number): Problem {
  return new Problem('rate-limited', `Too many requests ${policy.subject}; retry in ${reset} s.`, {
    headers: {
      'Retry-After': String(reset),
      'RateLimit-Limit': String(policy.limit),
      'RateLimit-Remaining': '0',
      'RateLimit-Reset': String(reset),
      'RateLimit-Policy': policy.header,
    },
  })
}

// As Express's 'trust proxy' names them (proxy-addr).
const ranges: Record<string, string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
}

function blockList(items: readonly string[]): BlockList {
  const list = new BlockList()
  for (const item of items.flatMap((i) => ranges[i] ?? [i])) {
    const [address = '', bits] = item.split('/')
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4'
    if (bits === undefined) list.addAddress(address, family)
    else list.addSubnet(address, Number(bits), family)
  }
  return list
}

/** What a client is counted by: an IPv4 address (also when IPv4-mapped), or the /56 of an IPv6 one. */
export function clientPrefix(address: string): string {
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7)
  if (!address.includes(':')) return address
  const [head = '', tail] = (address.split('%')[0] ?? '').split('::')
  const left = head ? head.split(':') : []
  const right = tail ? tail.split(':') : []
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
  const bits = groups.slice(0, 4).map((g) => Number.parseInt(g, 16) || 0)
  const kept = bits.map((g, i) => g & (0xffff << Math.max(0, 16 * (i + 1) - ipv6PrefixBits)) & 0xffff)
  return `${kept.map((g) => g.toString(16)).join(':')}::/${ipv6PrefixBits}`
}
