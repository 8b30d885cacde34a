import type { Response } from 'express'
import { contract, contractYaml } from './contract.js'
import type { Sql } from './db.js'
import type { Handlers } from './operations.js'
import { Problem } from './problems.js'
import { webPage, webPageSecurityPolicy } from './web/assets.js'

type MetaOperations = Pick<Handlers, 'getWebApp' | 'getHealth' | 'getReadiness' | 'getDocs' | 'getContractJson' | 'getContractYaml'>

const docsPage = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Todo API reference</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="reference"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script>
    // validatorUrl: null, else Swagger UI sends the contract's URL to validator.swagger.io from any non-localhost host.
    SwaggerUIBundle({ url: '/openapi.json', dom_id: '#reference', persistAuthorization: true, displayRequestDuration: true, validatorUrl: null })
  </script>
</body>
</html>
`

/** The public operations: the web page, liveness, readiness, the reference page and the contract itself. */
export function metaHandlers(sql: Sql): MetaOperations {
  return {
    getWebApp: (_req, res) => {
      res.set('Content-Security-Policy', webPageSecurityPolicy).set('Referrer-Policy', 'no-referrer')
      sendText(res, 'text/html', webPage)
    },
    getHealth: (_req, res) => {
      res.json({ status: 'ok' })
    },
    getReadiness: async (_req, res) => {
      await sql`select 1`.catch(() => {
        throw new Problem('unavailable', 'PostgreSQL does not answer.')
      })
      res.json({ status: 'ok' })
    },
    getDocs: (_req, res) => {
      sendText(res, 'text/html', docsPage)
    },
    getContractJson: (_req, res) => {
      res.json(contract as Record<string, unknown>)
    },
    getContractYaml: (_req, res) => {
      sendText(res, 'application/yaml', contractYaml)
    },
  }
}

// Not res.send: its conditional-request handling would answer `If-None-Match: *` with a 304 that
// these operations do not declare (they carry no validator to compare).
function sendText(res: Response, type: string, text: string): void {
  res.setHeader('Content-Type', `${type}; charset=utf-8`)
  res.setHeader('Content-Length', Buffer.byteLength(text))
  res.end(text)
}
