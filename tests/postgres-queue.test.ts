// postgres.js keeps its pool's connections in queues (patches/postgres+3.4.9.patch): a queue that never
// emptied, as the busy connections of a pool under steady load, grew without end, and each query's
// remove() searched all of it (30 → 127 µs per query over 160,000 queries in a loop of 64 concurrent
// callers; flat at ~28 µs with the patch). The patched queue must still behave as a queue: checked
// here against a plain array over random operations, across its compactions.
import { describe, expect, test } from '@jest/globals'
// @ts-expect-error: the module has no type declarations
import Queue from '../node_modules/postgres/src/queue.js'

interface Q {
  readonly length: number
  push(x: unknown): unknown
  shift(): unknown
  remove(x: unknown): unknown
}

describe('postgres.js pool queue (patched)', () => {
  test('behaves as a FIFO with removal, whatever the mix of operations', () => {
    let seed = 42
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    const queue = Queue() as Q
    const model: object[] = []
    const taken: object[] = []
    for (let step = 0; step < 20_000; step++) {
      const r = random()
      if (r < 0.45 || model.length === 0) {
        const item = { step }
        queue.push(item)
        model.push(item)
      } else if (r < 0.85) {
        const item = model.shift() as object
        expect(queue.shift()).toBe(item)
        taken.push(item)
      } else if (r < 0.97) {
        const item = model.splice(Math.floor(random() * model.length), 1)[0] as object
        expect(queue.remove(item)).toBe(item)
      } else {
        // Something no longer (or never) in the queue.
        expect(queue.remove(taken[Math.floor(random() * taken.length)] ?? {})).toBeNull()
      }
      expect(queue.length).toBe(model.length)
    }
    while (model.length) expect(queue.shift()).toBe(model.shift())
    expect(queue.length).toBe(0)
  })

  test('a queue that is never empty, as a pool under steady load: one in, one out, indefinitely', () => {
    const queue = Queue() as Q
    const items = Array.from({ length: 10 }, (_, i) => ({ i }))
    for (const item of items) queue.push(item)
    let misordered = 0
    for (let round = 0; round < 100_000; round++) {
      const item = queue.shift()
      if (item !== items[round % 10]) misordered++
      queue.push(item)
    }
    expect(misordered).toBe(0)
    // The connection moved elsewhere is found and removed, whatever came before.
    expect(queue.remove(items[5])).toBe(items[5])
    expect(queue.length).toBe(9)
  })
})
