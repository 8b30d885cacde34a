// A task's version, as HTTP validators (RFC 9110 §8.8.3, §13.1). Shared by the server and the SDK,
// so that a client can send If-Match for any task it holds, including those that came in a list.

/**
 * The strong ETag of a task as it is now: its id and its `updated_at` in milliseconds (base 36).
 * `updated_at` strictly increases with every write to the task, so the tag changes with every
 * modification, never twice for two versions, even within one millisecond.
 */
export function etagOf(task: { id: number; updated_at: string | Date }): string {
  return `"${task.id}-${new Date(task.updated_at).getTime().toString(36)}"`
}

interface EntityTag {
  weak: boolean
  /** The opaque tag with its quotes, e.g. `"42-mi8r3kx0"`. */
  opaque: string
}

/** An If-Match / If-None-Match value: `*`, or its entity tags; anything that is not one is left out. */
function parse(header: string): '*' | EntityTag[] {
  if (header.trim() === '*') return '*'
  const tags: EntityTag[] = []
  for (const match of header.matchAll(/(W\/)?("[\x21\x23-\x7e\x80-\xff]*")/g)) {
    tags.push({ weak: match[1] !== undefined, opaque: match[2] as string })
  }
  return tags
}

/**
 * The versions of task `id` that an If-Match header accepts: `*` (any current version), or the
 * `updated_at` instants its strong tags name (weak tags never match, RFC 9110 §13.1.1; tags of
 * another task, or not of this server, name none).
 */
export function versionsAccepted(ifMatch: string, id: number): '*' | string[] {
  const tags = parse(ifMatch)
  if (tags === '*') return '*'
  const versions: string[] = []
  for (const { weak, opaque } of tags) {
    const match = /^"(\d+)-([0-9a-z]{1,11})"$/.exec(opaque)
    if (weak || !match || Number(match[1]) !== id) continue
    const instant = new Date(Number.parseInt(match[2] as string, 36))
    if (!Number.isNaN(instant.getTime())) versions.push(instant.toISOString())
  }
  return versions
}

/** Whether an If-None-Match header names this ETag (weak comparison, RFC 9110 §13.1.2). */
export function noneMatchHolds(ifNoneMatch: string, etag: string): boolean {
  const tags = parse(ifNoneMatch)
  return tags !== '*' && !tags.some((t) => t.opaque === etag)
}
