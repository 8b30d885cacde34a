// Proofs that the SDK runs unchanged in browsers, Node 18+ and edge runtimes, and that the package
// entry `todo-api/client` (npm run build:sdk → dist/sdk/) works for JavaScript and TypeScript
// consumers: a neutral-platform bundle with no Node built-in, the bundle run in a bare JavaScript
// realm (web globals only) against the live server, the built package imported by a plain `node`,
// and a consumer type-checked against the built .d.ts under both module resolutions frontends use.
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { createContext, runInContext } from 'node:vm'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { build, type Plugin } from 'esbuild'
import { signIn, startServer, type TestServer } from './support/server.js'

const run = promisify(execFile)
/** For the tests that wait for the build and spawn node or tsc, which take longer under a parallel `npm test`. */
const slow = 60_000
const project = resolve(import.meta.dirname, '..')
const entry = join(project, 'src/sdk/client.ts')

/** Plain Node: no tsx, no jest flags. */
const plainEnv = () => {
  const { NODE_OPTIONS: _, ...env } = process.env
  return env
}

let server: TestServer
let scratch: string
let built: Promise<unknown>
beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'todo-api-sdk-package-'))
  built = run('npm', ['run', 'build:sdk'], { cwd: project, env: plainEnv() })
  built.catch(() => {}) // awaited (and reported) by the tests that need it
  server = await startServer()
})
afterAll(async () => {
  await built.catch(() => {})
  rmSync(scratch, { recursive: true, force: true })
  await server.close()
})

/** Records every import that resolves to a Node built-in (`fs`, `node:fs`, …). */
function nodeBuiltins(found: string[]): Plugin {
  const builtins = new Set(builtinModules)
  return {
    name: 'node-builtins',
    setup(b) {
      b.onResolve({ filter: /.*/ }, ({ path }) => {
        if (path.startsWith('node:') || builtins.has(path) || builtins.has(path.split('/')[0] ?? '')) found.push(path)
        return undefined
      })
    },
  }
}

describe('the SDK outside Node', () => {
  test('when the client is bundled for a neutral platform, then it bundles whole with no Node built-in imported', async () => {
    const found: string[] = []
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'neutral',
      mainFields: ['module', 'main'],
      metafile: true,
      logLevel: 'silent',
      plugins: [nodeBuiltins(found)],
    })
    expect(result.errors).toEqual([])
    expect(found).toEqual([])
    const [output] = Object.values(result.metafile.outputs)
    expect(output?.imports).toEqual([]) // nothing left external: openapi-fetch is inside
    expect(Object.keys(result.metafile.inputs).some((input) => input.includes('node_modules/openapi-fetch/'))).toBe(true)
  })

  test('when the minified bundle is gzipped, then it stays small (the number is printed)', async () => {
    const result = await build({ entryPoints: [entry], bundle: true, write: false, format: 'esm', platform: 'browser', minify: true })
    const bytes = result.outputFiles[0]?.contents ?? new Uint8Array()
    const gzipped = gzipSync(bytes).length
    console.info(`SDK bundle (src/sdk/client.ts + openapi-fetch, esbuild --minify): ${bytes.length} B, gzipped ${gzipped} B`)
    expect(gzipped).toBeLessThan(8 * 1024)
  })

  test('when the bundle runs in a bare realm with only web globals (as on an edge runtime), then it talks to the live server', async () => {
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      format: 'iife',
      globalName: 'TodoSdk',
      platform: 'browser',
    })
    // No process, require, Buffer, global, setImmediate: only what browsers and edge runtimes share.
    const realm = createContext({
      ...{ fetch, Request, Response, Headers, FormData, Blob, URL, URLSearchParams, AbortController, AbortSignal },
      ...{ TextEncoder, TextDecoder, setTimeout, clearTimeout, console },
    })
    runInContext(result.outputFiles[0]?.text ?? '', realm)
    expect(runInContext('[typeof process, typeof require, typeof Buffer, typeof global]', realm)).toEqual([
      'undefined',
      'undefined',
      'undefined',
      'undefined',
    ])
    const { user_id, token } = await signIn(server)
    const script = `(async (baseUrl, token) => {
      const api = TodoSdk.createTodoClient({ baseUrl, token: async () => token })
      let opened
      const open = new Promise((resolve) => { opened = resolve })
      const live = (async () => {
        for await (const event of api.subscribe({ onOpen: opened })) return event
      })()
      await open
      const created = await api.POST('/api/tasks', { body: { title: 'from the edge' } })
      await api.POST('/api/tasks', { body: { title: 'second' } })
      const sizes = []
      for await (const page of api.pages('/api/tasks', { params: { query: { limit: 1 } } })) sizes.push(page.length)
      const anonymous = await TodoSdk.createTodoClient({ baseUrl }).GET('/api/tasks')
      return { status: created.response.status, task: created.data, sizes, problem: anonymous.error, event: await live }
    })`
    const call = runInContext(script, realm) as (url: string, token: string) => Promise<Record<string, unknown>>
    const outcome = await call(server.url, token)
    expect(outcome).toMatchObject({
      status: 201,
      task: { user_id, title: 'from the edge', completed: false },
      sizes: [1, 1],
      problem: { type: 'urn:todo-api:problem:unauthorized', status: 401 },
    })
    expect(outcome.event).toEqual({ type: 'task.created', id: expect.any(String), task: outcome.task })
  })
})

describe('the package entry todo-api/client', () => {
  test(
    'when a plain node process imports todo-api/client after build:sdk, then it calls the live server with it',
    async () => {
      await built
      const { user_id, token } = await signIn(server)
      const script = `
      import { createTodoClient, TodoApiError } from 'todo-api/client'
      const api = createTodoClient({ baseUrl: process.env.TODO_URL, token: () => process.env.TODO_TOKEN })
      const created = await api.POST('/api/{user_id}/tasks', { params: { path: { user_id: process.env.TODO_USER } }, body: { title: 'from node' } })
      const listed = await api.GET('/api/tasks')
      let failure
      try {
        for await (const _ of createTodoClient({ baseUrl: process.env.TODO_URL }).pages('/api/tasks'));
      } catch (error) {
        failure = { isTodoApiError: error instanceof TodoApiError, problem: error.problem }
      }
      console.log(JSON.stringify({ resolved: import.meta.resolve('todo-api/client'), status: created.response.status, listed: listed.data, failure }))
    `
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
        cwd: project,
        env: { ...plainEnv(), TODO_URL: server.url, TODO_TOKEN: token, TODO_USER: user_id },
      })
      const outcome = JSON.parse(stdout)
      expect(outcome.resolved).toBe(`file://${project}/dist/sdk/src/sdk/client.js`)
      expect(outcome.status).toBe(201)
      expect(outcome.listed).toEqual([expect.objectContaining({ user_id, title: 'from node' })])
      expect(outcome.failure).toEqual({ isTodoApiError: true, problem: expect.objectContaining({ status: 401 }) })
    },
    slow,
  )

  test(
    'when the SDK tarball is installed into a fresh frontend project, then it brings only openapi-fetch and its entry imports',
    async () => {
      await built
      const frontend = join(scratch, 'frontend')
      mkdirSync(frontend)
      writeFileSync(join(frontend, 'package.json'), JSON.stringify({ name: 'frontend', private: true, type: 'module' }))
      const packed = await run('npm', ['pack', join(project, 'dist/sdk'), '--pack-destination', scratch, '--json'], { env: plainEnv() })
      const [{ filename }] = JSON.parse(packed.stdout) as [{ filename: string }]
      await run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', join(scratch, filename)], {
        cwd: frontend,
        env: plainEnv(),
      })
      expect(
        readdirSync(join(frontend, 'node_modules'))
          .filter((d) => !d.startsWith('.'))
          .sort(),
      ).toEqual(['openapi-fetch', 'openapi-typescript-helpers', 'todo-api'])
      const imported = await run(
        process.execPath,
        ['--input-type=module', '-e', "const m = await import('todo-api/client'); console.log(typeof m.createTodoClient)"],
        {
          cwd: frontend,
          env: plainEnv(),
        },
      )
      expect(imported.stdout.trim()).toBe('function')
    },
    slow,
  )

  test(
    'when a consumer type-checks against the built .d.ts (moduleResolution bundler and NodeNext), then it compiles and wrong calls do not',
    async () => {
      await built
      await Promise.all([
        typeCheckConsumer('bundler', { module: 'esnext', moduleResolution: 'bundler' }),
        typeCheckConsumer('NodeNext', { module: 'nodenext', moduleResolution: 'nodenext' }),
      ])
    },
    slow,
  )
})

/** A consumer project with `todo-api` linked into node_modules, type-checked by tsc (our .d.ts included: no skipLibCheck). */
async function typeCheckConsumer(name: string, resolution: Record<string, string>) {
  const consumer = join(scratch, name)
  mkdirSync(join(consumer, 'node_modules'), { recursive: true })
  symlinkSync(project, join(consumer, 'node_modules', 'todo-api'), 'dir') // as `npm install ../todo-api` would
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  writeFileSync(
    join(consumer, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { ...resolution, target: 'es2022', lib: ['es2022', 'dom'], types: [], strict: true, noEmit: true },
      files: ['lib/api.ts'],
    }),
  )
  mkdirSync(join(consumer, 'lib'))
  writeFileSync(
    join(consumer, 'lib/api.ts'),
    `import { createTodoClient, type Problem, type Task, TodoApiError } from 'todo-api/client'

export const api = createTodoClient({ baseUrl: 'https://api.example.com', token: async () => 'jwt', credentials: 'include' })

export async function pendingTasks(): Promise<Task[]> {
  const { data, error } = await api.GET('/api/tasks', { params: { query: { status: 'pending', sort: 'title' } } })
  if (error) throw new TodoApiError(error satisfies Problem)
  return data
}

export async function everyTask(user_id: string): Promise<Task[]> {
  const all: Task[] = []
  for await (const page of api.pages('/api/{user_id}/tasks', { params: { path: { user_id } } })) all.push(...page)
  return all
}

export async function follow(signal: AbortSignal): Promise<number[]> {
  const ids: number[] = []
  for await (const event of api.subscribe({ signal, onRetry: (delayMs) => console.info(delayMs) })) {
    if (event.type === 'task.deleted') ids.push(event.task_id)
    else if (event.type !== 'reload') ids.push(event.task.id)
  }
  return ids
}

export async function wrongCalls(): Promise<void> {
  // @ts-expect-error title is required
  await api.POST('/api/tasks', { body: { description: 'no title' } })
  // @ts-expect-error unknown status
  await api.GET('/api/tasks', { params: { query: { status: 'done' } } })
  // @ts-expect-error task_id is a number
  await api.DELETE('/api/tasks/{task_id}', { params: { path: { task_id: '1' } } })
  for await (const event of api.subscribe()) {
    // @ts-expect-error a deleted task's event has only its id
    if (event.type === 'task.deleted') console.info(event.task.title)
  }
}
`,
  )
  const tsc = join(project, 'node_modules/typescript/bin/tsc')
  const { stdout } = await run(process.execPath, [tsc, '-p', consumer, '--listFiles'], { cwd: consumer, env: plainEnv() }).catch(
    (failure: { stdout: string }) => {
      throw new Error(`tsc failed:\n${failure.stdout}`)
    },
  )
  const files = stdout.split('\n')
  expect(files).toContain(join(project, 'dist/sdk/src/sdk/client.d.ts'))
  expect(files).toContain(join(project, 'dist/sdk/generated/api.d.ts'))
  expect(files).not.toContain(entry)
}
