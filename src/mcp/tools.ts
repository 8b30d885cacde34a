import type { Tool as ToolDefinition } from '@modelcontextprotocol/sdk/types.js'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import { type Contract, type HttpMethod, type Operation, operationsOf, parametersOf, resolved } from '../contract.js'
import { type InputRules, inputRulesOf } from '../input-checks.js'

export type Location = 'path' | 'query' | 'body'
type Schema = Record<string, unknown>

/** What a tool's operation answered over the response object its handler was given. */
export interface Answer {
  status: number
  headers: Map<string, string>
  body: unknown
}

/** A tool of the MCP server: one operation of the contract that names one with `x-mcp-tool`. */
export interface Tool {
  /** As tools/list publishes it. */
  readonly definition: ToolDefinition
  readonly operationId: string
  readonly path: string
  readonly method: HttpMethod
  /** Where each argument goes in the operation's request. */
  readonly locations: ReadonlyMap<string, Location>
  readonly rules: InputRules
  /** The contract's rules for the arguments, as the validator applies them: it fills in defaults. */
  readonly validate: ValidateFunction
  /** The tool's result (structuredContent, an object) from what the operation answered. */
  readonly output: (answer: Answer, args: Record<string, unknown>) => Record<string, unknown>
}

// As express-openapi-validator compiles the contract (src/app.ts): OpenAPI 3.1 is JSON Schema 2020-12,
// formats in full, no coercion (arguments are JSON, not URL text), defaults filled in.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020, options: { mode: 'full' }) => void
const ajv = new Ajv2020({ strict: false, strictNumbers: true, allErrors: true, useDefaults: true })
addFormats(ajv, { mode: 'full' })

/**
 * The tools of the contract, derived at start-up: every operation with an `x-mcp-tool` name. Its
 * path and query parameters and the fields of its JSON body become the arguments of one object
 * (headers are HTTP's own: If-Match, Idempotency-Key); its success answer becomes the output.
 * Anything that cannot be said that way fails here, naming the tool.
 */
export function toolsOf(doc: Contract): Tool[] {
  const tools = operationsOf(doc).flatMap(({ path, method, operation }) => {
    const name = (operation as { 'x-mcp-tool'?: string })['x-mcp-tool']
    return name === undefined ? [] : [toolOf(doc, name, path, method, operation)]
  })
  const names = tools.map((t) => t.definition.name)
  const repeated = names.find((name, i) => names.indexOf(name) !== i)
  if (repeated !== undefined) throw new Error(`x-mcp-tool ${repeated} names more than one operation`)
  return tools
}

interface OperationObject extends Operation {
  summary?: string
  description?: string
  requestBody?: unknown
}

function toolOf(doc: Contract, name: string, path: string, method: HttpMethod, operation: OperationObject): Tool {
  const fail = (why: string) => new Error(`x-mcp-tool ${name} (${operation.operationId}): ${why}`)
  const properties: Record<string, Schema> = {}
  const required: string[] = []
  const locations = new Map<string, Location>()
  const add = (field: string, location: Location, schema: Schema, isRequired: boolean) => {
    const taken = locations.get(field)
    if (taken) throw fail(`"${field}" is both a ${taken} and a ${location} field: as one argument it would be ambiguous`)
    locations.set(field, location)
    properties[field] = schema
    if (isRequired) required.push(field)
  }

  for (const parameter of parametersOf(doc, path, method)) {
    // The user is the token's, never an argument's.
    if (parameter.name === 'user_id') throw fail('a tool acts for the signed-in user: its operation cannot take a user_id')
    if (parameter.in !== 'path' && parameter.in !== 'query') continue
    const schema = inline(doc, parameter.schema)
    const description = parameter.description ?? schema.description
    add(
      parameter.name,
      parameter.in,
      { ...schema, ...(description !== undefined && { description }) },
      parameter.in === 'path' || !!parameter.required,
    )
  }
  const inputSchema: Schema = { type: 'object', properties, required, additionalProperties: false }

  const requestBody = resolved<{ required?: boolean; content?: Record<string, { schema?: unknown }> } | undefined>(
    doc,
    operation.requestBody,
  )
  const bodySchema = requestBody?.content?.['application/json']?.schema
  if (requestBody && !bodySchema) throw fail('only a JSON body can be given as arguments')
  if (bodySchema) {
    const {
      type,
      properties: fields = {},
      required: needed = [],
      additionalProperties,
      minProperties,
      description,
      ...other
    } = inline(doc, bodySchema) as Schema & { properties?: Record<string, Schema>; required?: string[]; minProperties?: number }
    if (type !== 'object' || Object.keys(other).length > 0) {
      throw fail('its body must be an object schema of properties alone, to be merged with the parameters')
    }
    if (!requestBody?.required && needed.length > 0)
      throw fail('an optional body with required fields cannot be merged with the parameters')
    const parameterCount = locations.size
    for (const [field, schema] of Object.entries(fields)) add(field, 'body', schema, needed.includes(field))
    inputSchema.additionalProperties = additionalProperties ?? true
    if (description !== undefined) inputSchema.description = description
    if (minProperties !== undefined) {
      // The body's "at least n fields" counts the parameters too, exactly only if each must be given.
      if (required.length - needed.length !== parameterCount) throw fail('a body with minProperties needs every parameter required')
      inputSchema.minProperties = minProperties + parameterCount
    }
  }

  const { outputSchema, output } = outputOf(doc, method, operation, locations, properties, fail)
  return {
    definition: {
      name,
      description: (operation.description ?? operation.summary ?? '').trim(),
      inputSchema: inputSchema as ToolDefinition['inputSchema'],
      outputSchema,
      // What the HTTP method promises (RFC 9110), for clients that ask before a tool writes or deletes.
      annotations: {
        readOnlyHint: method === 'get',
        destructiveHint: method !== 'get' && method !== 'post',
        idempotentHint: method === 'get' || method === 'put' || method === 'delete',
        openWorldHint: false,
      },
    },
    operationId: operation.operationId,
    path,
    method,
    locations,
    rules: inputRulesOf(doc, path, method),
    validate: ajv.compile(inputSchema),
    output,
  }
}

/**
 * A tool's output is an object, and what it says is the operation's success answer:
 * - a JSON object as it is (a task, the counts);
 * - a JSON array under the plural of its items' schema (`{ tasks: [...] }`), with `next_cursor` when
 *   the operation pages through a `Link` header and a `cursor` parameter: the `cursor` of the next
 *   page's URL, to call the tool again with;
 * - no body (a DELETE's 204) as `{ deleted: true }` with the path parameters that named what was deleted.
 */
function outputOf(
  doc: Contract,
  method: HttpMethod,
  operation: OperationObject,
  locations: ReadonlyMap<string, Location>,
  inputs: Record<string, Schema>,
  fail: (why: string) => Error,
): Pick<ToolDefinition, 'outputSchema'> & Pick<Tool, 'output'> {
  const [status, reference] = Object.entries(operation.responses).find(([code]) => code.startsWith('2')) ?? []
  const response = resolved<{ headers?: Record<string, unknown>; content?: Record<string, { schema?: unknown }> }>(doc, reference)
  const declared = response?.content?.['application/json']?.schema
  if (declared === undefined) {
    if (method !== 'delete') throw fail(`its ${status} answer has no JSON body, which only a DELETE's may lack`)
    const names = [...locations].filter(([, location]) => location === 'path').map(([name]) => name)
    return {
      outputSchema: {
        type: 'object',
        required: ['deleted', ...names],
        additionalProperties: false,
        properties: { deleted: { const: true }, ...Object.fromEntries(names.map((n) => [n, inputs[n] as Schema])) },
      },
      output: (_answer, args) => ({ deleted: true, ...Object.fromEntries(names.map((n) => [n, args[n]])) }),
    }
  }
  const schema = inline(doc, declared)
  if (schema.type === 'object') return { outputSchema: schema as ToolDefinition['outputSchema'], output: (answer) => answer.body as Schema }
  if (schema.type !== 'array') throw fail(`its ${status} answer is neither an object nor an array`)
  const key = pluralOf((declared as { items?: { $ref?: string } }).items?.$ref)
  const paged = response?.headers?.Link !== undefined && locations.get('cursor') === 'query'
  const nextCursor = {
    type: 'string',
    description: 'Present when more results exist: call the tool again with the same arguments and this cursor.',
  }
  return {
    outputSchema: {
      type: 'object',
      required: [key],
      additionalProperties: false,
      properties: { [key]: schema, ...(paged && { next_cursor: nextCursor }) },
    },
    output: (answer) => {
      const next = paged && /<([^>]*)>;\s*rel="next"/.exec(answer.headers.get('link') ?? '')?.[1]
      const cursor = next && new URLSearchParams(next.split('?')[1]).get('cursor')
      return { [key]: answer.body, ...(cursor && { next_cursor: cursor }) }
    },
  }
}

// `#/components/schemas/Task` → `tasks`, `TaskEvent` → `task_events`.
function pluralOf(ref: string | undefined): string {
  const name = ref?.split('/').pop()
  return name ? `${name.replace(/(?<=[a-z0-9])([A-Z])/g, '_$1').toLowerCase()}s` : 'items'
}

// Where JSON Schema keywords hold schemas: one, a list, or a map of them.
const subschema = new Set(['items', 'additionalProperties', 'not', 'contains', 'if', 'then', 'else', 'propertyNames', 'contentSchema'])
const subschemaList = new Set(['allOf', 'anyOf', 'oneOf', 'prefixItems'])
const subschemaMap = new Set(['properties', 'patternProperties', 'dependentSchemas'])
// Keywords that describe a value rather than constrain it.
const annotations = new Set(['description', 'default', 'title', 'examples', 'deprecated', 'readOnly', 'writeOnly'])

/**
 * The schema with each `$ref` replaced by the schema it names, since many MCP clients cannot follow
 * one; OpenAPI's own keywords (`x-…`, `example`) are left out. A schema that contains itself
 * (a task's `next_occurrence`) is written out once; within itself it is only its type.
 */
function inline(doc: Contract, schema: unknown, expanding: readonly string[] = []): Schema {
  if (typeof schema !== 'object' || schema === null) return schema as Schema
  const { $ref, ...keywords } = schema as Schema
  const own: Schema = {}
  for (const [key, value] of Object.entries(keywords)) {
    if (key.startsWith('x-') || key === 'example') continue
    if (subschema.has(key)) own[key] = inline(doc, value, expanding)
    else if (subschemaList.has(key)) own[key] = (value as unknown[]).map((s) => inline(doc, s, expanding))
    else if (subschemaMap.has(key)) {
      own[key] = Object.fromEntries(Object.entries(value as Schema).map(([name, s]) => [name, inline(doc, s, expanding)]))
    } else own[key] = value
  }
  if (typeof $ref !== 'string') return own
  const target = resolved<Schema>(doc, schema)
  const expanded = expanding.includes($ref) ? { type: target.type } : inline(doc, target, [...expanding, $ref])
  // Beside a $ref, annotations refine what it names (a description, a default); other keywords add to it.
  const adds = Object.keys(own).some((key) => !annotations.has(key) && key in expanded)
  return adds ? { allOf: [expanded], ...own } : { ...expanded, ...own }
}
