import { eventViolations } from './contract.js'
import type { TestServer } from './server.js'

/** An event as the stream sent it (the fields of the Server-Sent Events standard). */
export interface ReceivedEvent {
  id?: string
  event: string
  data: string
}

export interface EventStream {
  readonly response: Response
  /** Every event so far, in the order received (each checked against the contract's TaskEvent). */
  readonly events: ReceivedEvent[]
  /** How many comment lines (heartbeats) came. */
  readonly comments: () => number
  /** Resolves once `done(events)` holds; rejects after `timeoutMs` with what had come. */
  until(done: (events: ReceivedEvent[]) => boolean, timeoutMs?: number): Promise<ReceivedEvent[]>
  /** Resolves when the server ends the stream. */
  readonly ended: Promise<void>
  close(): void
}

/**
 * Opens a task event stream through the test server's checked fetch and reads it as it comes, the
 * way the Server-Sent Events standard parses one. The stream is live once this resolves: the server
 * answers only when it is listening.
 */
export async function openEvents(
  server: Pick<TestServer, 'fetch'>,
  token: string,
  { path = '/api/tasks/events', lastEventId }: { path?: string; lastEventId?: string } = {},
): Promise<EventStream> {
  const abort = new AbortController()
  const headers: Record<string, string> = { Authorization: `Bearer ${token}` }
  if (lastEventId !== undefined) headers['Last-Event-ID'] = lastEventId
  const response = await server.fetch(path, { headers, signal: abort.signal })
  const events: ReceivedEvent[] = []
  let comments = 0
  const waiting = new Set<() => void>()
  const violations: string[] = []

  const ended = (async () => {
    if (!response.body) return
    const decoder = new TextDecoder()
    let buffer = ''
    let event: Partial<ReceivedEvent> & { dataLines: string[] } = { dataLines: [] }
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true })
        let newline = buffer.indexOf('\n')
        while (newline >= 0) {
          const line = buffer.slice(0, newline)
          buffer = buffer.slice(newline + 1)
          newline = buffer.indexOf('\n')
          if (line === '') {
            if (event.dataLines.length > 0) {
              const received = {
                ...(event.id !== undefined && { id: event.id }),
                event: event.event ?? 'message',
                data: event.dataLines.join('\n'),
              }
              violations.push(...eventViolations(received))
              events.push(received)
              for (const check of waiting) check()
            }
            event = { dataLines: [] }
          } else if (line.startsWith(':')) comments++
          else {
            const colon = line.indexOf(':')
            const field = colon < 0 ? line : line.slice(0, colon)
            const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
            if (field === 'data') event.dataLines.push(value)
            else if (field === 'id') event.id = value
            else if (field === 'event') event.event = value
          }
        }
      }
    } catch (error) {
      if (!abort.signal.aborted) throw error
    }
  })()

  return {
    response,
    events,
    comments: () => comments,
    until(done, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (violations.length > 0) finish(() => reject(new Error(`events break the contract:\n${violations.join('\n')}`)))
          else if (done(events)) finish(() => resolve(events))
        }
        const timer = setTimeout(
          () => finish(() => reject(new Error(`timed out after ${timeoutMs} ms; received: ${JSON.stringify(events)}`))),
          timeoutMs,
        )
        const finish = (settle: () => void) => {
          clearTimeout(timer)
          waiting.delete(check)
          settle()
        }
        waiting.add(check)
        check()
      })
    },
    ended,
    close: () => abort.abort(),
  }
}

/** The parsed data of each event, with its type. */
export const dataOf = (events: ReceivedEvent[]) =>
  events.map((e) => ({ event: e.event, data: JSON.parse(e.data) as Record<string, unknown> }))
