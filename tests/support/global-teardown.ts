import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { declaredPairs, type Recorded } from './contract.js'

export async function globalTeardown(globalConfig: Record<string, unknown>): Promise<void> {
  try {
    checkContractCoverage(globalConfig)
  } finally {
    await globalThis.__embedded?.stop()
    globalThis.__scratch?.()
  }
}

// Fails the run when some operation × declared status of the contract was never answered
// during it: every declared status needs a test that provokes it. Only a run of the whole
// suite can tell (a filtered run skips the check).
function checkContractCoverage(globalConfig: Record<string, unknown>): void {
  const filtered =
    (globalConfig.testPathPatterns as { patterns?: string[] } | undefined)?.patterns?.length ||
    globalConfig.testNamePattern ||
    globalConfig.onlyChanged ||
    globalConfig.onlyFailures ||
    globalConfig.findRelatedTests ||
    globalConfig.shard
  if (filtered) return
  const dir = process.env.TEST_CONTRACT_LOG_DIR
  const seen = new Set<string>()
  if (dir && existsSync(dir)) {
    for (const file of readdirSync(dir)) {
      for (const line of readFileSync(join(dir, file), 'utf8').split('\n').filter(Boolean)) {
        const { operation, status } = JSON.parse(line) as Recorded
        seen.add(`${operation} ${status}`)
      }
    }
  }
  const missing = new Map<string, number[]>()
  for (const { operation, status } of declaredPairs()) {
    if (!seen.has(`${operation} ${status}`)) missing.set(`${operation}`, [...(missing.get(`${operation}`) ?? []), status])
  }
  if (missing.size > 0) {
    const lines = [...missing].map(([operation, statuses]) => `  ${operation}: ${statuses.join(', ')}`)
    throw new Error(`Contract coverage: these declared responses were never exercised by a test:\n${lines.join('\n')}`)
  }
}
