// Timestamps reach the API as PostgreSQL writes them in UTC and leave as ISO 8601 with milliseconds
// (src/db.ts isoTimestamp): every fractional precision PostgreSQL can write (it drops trailing zeros).
import { afterAll, expect, test } from '@jest/globals'
import { connect } from '../src/db.js'
import { testDatabaseUrl } from './support/server.js'

const sql = connect(testDatabaseUrl(), { max: 1 })
afterAll(() => sql.end())

test.each([
  ['2026-11-29 14:14:24+00', '2026-11-29T14:14:24.000Z'],
  ['2026-11-29 14:14:24.1+00', '2026-11-29T14:14:24.100Z'],
  ['2026-11-29 14:14:24.12+00', '2026-11-29T14:14:24.120Z'],
  ['2026-11-29 14:14:24.123+00', '2026-11-29T14:14:24.123Z'],
  ['2026-11-29 14:14:24.123456+00', '2026-11-29T14:14:24.123Z'],
  ['2026-11-29 14:14:24.5+05:30', '2026-11-29T08:44:24.500Z'],
  ['0001-01-01 00:00:00+00', '0001-01-01T00:00:00.000Z'],
  ['infinity', 'infinity'],
  ['-infinity', '-infinity'],
])('%s reads as %s', async (given, expected) => {
  const [row] = await sql<{ at: string }[]>`select ${given}::timestamptz as at`
  expect(row?.at).toBe(expected)
})

test('a timestamptz(3) column rounds to milliseconds and reads back as written', async () => {
  const [row] = await sql<{ at: string }[]>`select ${'2026-02-28T23:59:59.9996Z'}::timestamptz(3) as at`
  expect(row?.at).toBe('2026-03-01T00:00:00.000Z')
})
