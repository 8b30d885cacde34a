import { userOf } from '../auth.js'
import type { Handler, Handlers } from '../operations.js'
import type { EventHub } from './hub.js'

type EventOperations = Pick<Handlers, 'streamTaskEvents' | 'streamMyTaskEvents'>

/** The user's live task events (both URL spellings), from the process's event hub. */
export function eventHandlers(hub: EventHub): EventOperations {
  const stream: Handler<'streamTaskEvents' | 'streamMyTaskEvents'> = async (req, res) => {
    // The contract allows only a plain decimal id (what the stream sends).
    const lastEventId = req.headers['last-event-id']
    await hub.open(res, userOf(req), lastEventId === undefined ? undefined : Number(lastEventId))
  }
  return { streamTaskEvents: stream, streamMyTaskEvents: stream }
}
