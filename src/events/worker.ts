import type { Logger } from 'pino'
import type { Sql } from '../db.js'
import { claimReminders, pruneEvents } from './outbox.js'

export interface EventWorkOptions {
  /** How often due reminders are looked for (default 1 s: a reminder arrives within about a second). */
  reminderIntervalMs?: number
  /** How often events past their hour are deleted (default 1 min). */
  pruneIntervalMs?: number
}

// Reminders are claimed this many at a time, again at once while a batch comes back full.
const batch = 200

/**
 * The outbox's background work in every API process: turning due reminders into events (each is
 * claimed by exactly one process, also those that fell due while no process ran) and pruning
 * old events. A database that is away is only logged: the next round tries again.
 */
export function startEventWork(
  sql: Sql,
  logger: Logger,
  changed: (user_id: string) => void,
  { reminderIntervalMs = 1000, pruneIntervalMs = 60_000 }: EventWorkOptions = {},
) {
  let stopped = false
  let running: Promise<void> = Promise.resolve()
  let lastPrune = 0

  const round = async () => {
    try {
      for (let claimed = batch; !stopped && claimed === batch; ) {
        const { count, users } = await claimReminders(sql, batch)
        for (const user_id of users) changed(user_id)
        claimed = count
      }
      if (Date.now() - lastPrune >= pruneIntervalMs) {
        lastPrune = Date.now()
        await pruneEvents(sql)
      }
    } catch (error) {
      logger.warn({ err: error }, 'reminders: could not claim due reminders; trying again')
    }
  }
  const timer = setInterval(() => {
    running = running.then(round)
  }, reminderIntervalMs).unref()
  running = round()

  return {
    /** Stops the rounds; one under way is waited for a second at most (a database that does not answer). */
    async stop(): Promise<void> {
      stopped = true
      clearInterval(timer)
      await Promise.race([running, new Promise((resolve) => setTimeout(resolve, 1000).unref())])
    },
  }
}
