// Compiles the server into dist/server.js once, so that `npm start` runs plain JavaScript: no
// TypeScript is transpiled while the API serves. Dependencies stay in node_modules (not bundled).
import { rmSync } from 'node:fs'
import { build } from 'esbuild'

rmSync('dist', { recursive: true, force: true })

await build({
  entryPoints: ['src/server.ts'],
  outdir: 'dist',
  bundle: true,
  splitting: true, // the primary process of a cluster loads only what it runs
  chunkNames: '[name]-[hash]', // beside server.js: src/paths.ts counts on dist/ being one level deep
  packages: 'external',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
})
