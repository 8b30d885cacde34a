// The parts of the MCP SDK that POST /mcp uses, in one module so that src/mcp/routes.ts loads them
// with a single dynamic import on the first POST /mcp (see mcpSdk there): with zod they take about
// 24 MiB of memory in every API process, which a process that never serves an agent does without.
// (One import, not one per SDK module: concurrent dynamic imports that share a dependency also
// trip a linking race in Jest's ESM runtime.)
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv'

export { Server } from '@modelcontextprotocol/sdk/server/index.js'
export { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js'
export { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError } from '@modelcontextprotocol/sdk/types.js'

/** Each POST has its own server; they share one compiled-schema cache (it serves elicitation, unused here). */
export const jsonSchemaValidator = new AjvJsonSchemaValidator()
