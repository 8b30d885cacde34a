import { readFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import type { RequestHandler } from 'express'
import { projectRoot } from '../paths.js'
import { Problem } from '../problems.js'

const here = (name: string) => join(projectRoot, 'src/web', name)
const types: Record<string, string> = { '.js': 'text/javascript', '.css': 'text/css' }

/** The web page served at `/` (getWebApp): static HTML that loads its bundle from `/app/assets/`. */
export const webPage = readFileSync(here('./index.html'), 'utf8')

// Only what the page's own script needs: the API of this origin, no inline code, nothing from elsewhere.
export const webPageSecurityPolicy =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

let bundle: Promise<Map<string, { type: string; body: Buffer }>> | undefined

// Built in memory at the first request and kept (the same from src/ and from dist/); a failed build is retried.
function assets() {
  // esbuild is loaded only when the page is first asked for: an API process that never serves it stays smaller.
  bundle ??= import('esbuild')
    .then(({ build }) =>
      build({
        entryPoints: [here('./main.ts'), here('./main.css')],
        outdir: 'app-assets',
        bundle: true,
        minify: true,
        format: 'esm',
        platform: 'browser',
        target: ['es2022'],
        write: false,
        logLevel: 'silent',
      }),
    )
    .then(
      ({ outputFiles }) =>
        new Map(
          outputFiles.map((file) => [
            basename(file.path),
            { type: types[file.path.slice(file.path.lastIndexOf('.'))] ?? '', body: Buffer.from(file.contents) },
          ]),
        ),
      (error: unknown) => {
        bundle = undefined
        throw error
      },
    )
  return bundle
}

/** The page's script and stylesheet, under the one prefix the contract does not declare besides the docs' assets. */
export function webAssets(): RequestHandler {
  return async (req, res) => {
    const asset = req.method === 'GET' || req.method === 'HEAD' ? (await assets()).get(req.path.slice(1)) : undefined
    if (!asset) throw new Problem('not-found', `No route matches ${req.method} ${req.originalUrl.split('?')[0]}.`)
    res.type(asset.type).set('Cache-Control', 'no-cache').send(asset.body)
  }
}
