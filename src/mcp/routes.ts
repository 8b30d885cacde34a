import type { Request } from 'express'
import { contract } from '../contract.js'
import type { Handler, Handlers } from '../operations.js'
import { Problem } from '../problems.js'
import { callTool, type OperationHandler } from './call.js'
import { toolsOf } from './tools.js'

type McpOperations = 'serveMcp' | 'getProtectedResourceMetadata' | 'getMcpProtectedResourceMetadata'

/**
 * The MCP server (POST /mcp), whose tools run the other operations' handlers, and the RFC 9728
 * metadata that tells a client where its tokens come from: `issuer`, the Better Auth server (JWT_ISSUER).
 */
export function mcpHandlers(
  handlers: Omit<Handlers, McpOperations>,
  { issuer }: { issuer: string | undefined },
): Pick<Handlers, McpOperations> {
  const tools = toolsOf(contract).map((tool) => {
    const handler = (handlers as unknown as Record<string, OperationHandler | undefined>)[tool.operationId]
    if (!handler) throw new Error(`x-mcp-tool ${tool.definition.name}: no handler for ${tool.operationId}`)
    return { tool, handler }
  })
  const byName = new Map(tools.map((entry) => [entry.tool.definition.name, entry]))
  const definitions = tools.map(({ tool }) => tool.definition)
  const { title, version } = contract.info as { title: string; version: string }
  const serveMcp: Handler<'serveMcp'> = async (req, res) => {
    const {
      Server,
      WebStandardStreamableHTTPServerTransport,
      CallToolRequestSchema,
      ErrorCode,
      ListToolsRequestSchema,
      McpError,
      jsonSchemaValidator,
    } = await mcpSdk()
    // Stateless: a server and a transport for this POST alone (a transport answers one request). The
    // transport's JSON answer is awaited here, so they are closed once it is written, not on 'close'.
    const server = new Server({ name: 'todo-api', version }, { capabilities: { tools: {} }, jsonSchemaValidator })
    let failure: unknown
    server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: definitions }))
    server.setRequestHandler(CallToolRequestSchema, async ({ params }) => {
      const entry = byName.get(params.name)
      if (!entry) throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${params.name}`)
      try {
        return await callTool(entry.tool, entry.handler, params.arguments ?? {}, req)
      } catch (error) {
        failure = error
        throw error
      }
    })
    // JSON answers, not a stream: a stateless server sends nothing but the answer to the request.
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true })
    try {
      await server.connect(transport)
      const answer = await transport.handleRequest(webRequestOf(req), { parsedBody: req.body })
      // A failing database answers the POST with its 500 or 503, as it would the operation over HTTP.
      if (failure !== undefined) throw failure
      if (answer.status >= 400) throw refusalOf(answer.status, (await answer.json()) as TransportError)
      res.status(answer.status)
      if (answer.status === 202) return void res.end()
      res.json(await answer.json())
    } finally {
      await server.close()
    }
  }

  // The issuer is named only if it is a URL, as RFC 9728 requires (JWT_ISSUER may be any string).
  const servers = issuer !== undefined && /^https?:\/\//.test(issuer) && URL.canParse(issuer) ? [issuer] : undefined
  const metadata = (req: Request, path: string, name: string) => ({
    resource: `${req.protocol}://${req.host}${path}`,
    ...(servers && { authorization_servers: servers }),
    bearer_methods_supported: ['header' as const],
    resource_name: name,
  })
  return {
    serveMcp,
    getProtectedResourceMetadata: (req, res) => {
      res.json(metadata(req, '', title))
    },
    getMcpProtectedResourceMetadata: (req, res) => {
      res.json(metadata(req, '/mcp', `${title} (MCP)`))
    },
  }
}

// The web-standard transport reads a fetch Request, of which it uses only the headers (Accept,
// Content-Type, MCP-Protocol-Version): the body is the one express.json() parsed and the contract checked.
function webRequestOf(req: Request): globalThis.Request {
  const headers = new Headers()
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value)
  }
  return new globalThis.Request(new URL(req.originalUrl, 'http://localhost'), { method: 'POST', headers })
}

interface TransportError {
  error: { message: string }
}

// The transport refuses a message with a JSON-RPC error; the API answers problem+json, as for every error.
function refusalOf(status: number, { error }: TransportError): Error {
  if (status === 400) return new Problem('bad-request', error.message)
  if (status === 406) return new Problem('not-acceptable', error.message)
  return new Error(`the MCP transport answered ${status}: ${error.message}`)
}

/** The MCP SDK (src/mcp/sdk.ts), loaded by the first POST /mcp rather than at start-up. */
let sdk: Promise<typeof import('./sdk.js')> | undefined
const mcpSdk = () => {
  sdk ??= import('./sdk.js').catch((error: unknown) => {
    sdk = undefined // the next POST tries again
    throw error
  })
  return sdk
}
