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
      res.set('Content-Security-Policy', webPageSecurityPolicy).set('Referrer-Policy', 'no-referrer').type('html').send(webPage)
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
      res.type('html').send(docsPage)
    },
    getContractJson: (_req, res) => {
      res.json(contract as Record<string, unknown>)
    },
    getContractYaml: (_req, res) => {
      res.type('application/yaml').send(contractYaml)
    },
  }
}
