// npm run build:sdk: the client (src/sdk/client.ts and the generated types it uses) as ESM
// JavaScript plus .d.ts in dist/sdk/, with a package.json of its own whose only dependency is
// openapi-fetch, so `npm run pack:sdk` gives frontends a tarball without the server's dependencies.
import { execFileSync } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'

const root = JSON.parse(readFileSync('package.json', 'utf8'))
rmSync('dist/sdk', { recursive: true, force: true })
execFileSync('npx', ['tsc', '-p', 'tsconfig.sdk.json'], { stdio: 'inherit' })
const sdk = {
  name: root.name,
  version: root.version,
  description: 'Typed client for todo-api, generated from its OpenAPI contract (openapi-fetch).',
  type: 'module',
  // The root's export targets point into dist/sdk/; inside dist/sdk they are relative to it.
  exports: JSON.parse(JSON.stringify(root.exports).replaceAll('./dist/sdk/', './')),
  sideEffects: false,
  dependencies: { 'openapi-fetch': root.dependencies['openapi-fetch'] },
}
writeFileSync('dist/sdk/package.json', `${JSON.stringify(sdk, null, 2)}\n`)
