// The benchmarks' server processes: each started in its own process group (its log under the scratch
// folder), its whole process tree's memory sampled while it runs.
import { type ChildProcess, spawn } from 'node:child_process'
import { openSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

export interface Server {
  name: string
  url: string
  pid: number
  peakRss: number
  peakPss: number
  peaks: Record<string, { rss: number; pss: number }>
  stop(): Promise<void>
}

/** Starts a server in its own process group and samples the memory of its whole process tree. */
export async function startServer(
  scratch: string,
  name: string,
  command: string,
  argv: string[],
  env: NodeJS.ProcessEnv,
  port: number,
): Promise<Server> {
  const log = openSync(join(scratch, `${port}.log`), 'w')
  const child: ChildProcess = spawn(command, argv, { env, detached: true, stdio: ['ignore', log, log] })
  const url = `http://127.0.0.1:${port}`
  const server: Server = {
    name,
    url,
    pid: child.pid as number,
    peakRss: 0,
    peakPss: 0,
    peaks: {},
    async stop() {
      clearInterval(sampler)
      if (child.exitCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      process.kill(-(child.pid as number), 'SIGTERM')
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))])
      if (child.exitCode === null) process.kill(-(child.pid as number), 'SIGKILL')
    },
  }
  const sampler = setInterval(() => {
    const { rss, pss } = treeOf(child.pid as number)
    server.peakRss = Math.max(server.peakRss, rss)
    server.peakPss = Math.max(server.peakPss, pss)
  }, 100)
  for (const deadline = Date.now() + 60_000; ; ) {
    if (child.exitCode !== null)
      throw new Error(`${name} exited (${child.exitCode}):\n${readFileSync(join(scratch, `${port}.log`), 'utf8')}`)
    const ok = await fetch(`${url}/api/tasks`, { headers: { authorization: 'Bearer x' } }).then(
      (r) => r.status === 401,
      () => false,
    )
    if (ok) return server
    if (Date.now() > deadline) throw new Error(`${name} did not start within 60 s`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * Memory and CPU time so far of a process and all its descendants (Linux /proc): resident memory
 * summed over the processes (which counts the pages of the node binary they share once per process),
 * their proportional share (PSS: each shared page divided among its sharers, i.e. the memory they
 * really take together), and CPU seconds (user + system).
 */
export function treeOf(root: number): { rss: number; pss: number; cpu: number } {
  const children = new Map<number, number[]>()
  const cpu = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // Fields after "pid (comm) ": state, ppid, …; utime and stime are the 14th and 15th fields.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const ppid = Number(fields[1])
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)])
      cpu.set(Number(entry), (Number(fields[11]) + Number(fields[12])) / 100)
    } catch {}
  }
  const total = { rss: 0, pss: 0, cpu: 0 }
  const stack = [root]
  while (stack.length > 0) {
    const pid = stack.pop() as number
    total.cpu += cpu.get(pid) ?? 0
    try {
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
      total.rss += Number(/^Rss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0) * 1024
      total.pss += Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0) * 1024
    } catch {}
    stack.push(...(children.get(pid) ?? []))
  }
  return total
}
