import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import { contract, type httpMethods, operationsOf } from '../../src/contract.js'

// Checks every response a test receives against contracts/openapi.yaml, independently of the
// server's own response validation (which cannot see answers given before an operation matched).

const document = JSON.parse(JSON.stringify(contract)) as Record<string, unknown>
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void
const ajv = new Ajv2020({ strict: false, allErrors: true })
addFormats(ajv)
ajv.addSchema(document, 'contract')

const operations = operationsOf(contract)
const templates = Object.keys(contract.paths).map((template) => ({
  template,
  regexp: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`),
  params: (template.match(/\{/g) ?? []).length,
}))

export interface Recorded {
  operation: string | null
  status: number
}

/** The contract operation a method and path resolve to (null when none does). */
export function operationFor(method: string, pathname: string): string | null {
  const match = templates.filter((t) => t.regexp.test(pathname)).sort((a, b) => a.params - b.params)[0]
  const m = method.toLowerCase() as (typeof httpMethods)[number]
  return match ? (operations.find((o) => o.path === match.template && o.method === m)?.operation.operationId ?? null) : null
}

function pointerSegment(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1')
}

// Walks a JSON pointer, following $refs; returns the node and the pointer it really lives at.
function resolve(pointer: string): { node: Record<string, unknown>; pointer: string } {
  let node: unknown = document
  let at = ''
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    node = (node as Record<string, unknown> | undefined)?.[key]
    at += `/${raw}`
    const ref = (node as { $ref?: string } | undefined)?.$ref
    if (ref?.startsWith('#')) ({ node, pointer: at } = resolve(ref.slice(1)))
  }
  return { node: node as Record<string, unknown>, pointer: at }
}

const validators = new Map<string, ValidateFunction>()
function validatorAt(pointer: string): ValidateFunction {
  let validate = validators.get(pointer)
  if (!validate) {
    validate = ajv.getSchema(`contract#${pointer}`)
    if (!validate) throw new Error(`no schema at ${pointer}`)
    validators.set(pointer, validate)
  }
  return validate
}

/** Everything about a response that the contract does not allow (empty when it conforms). */
export function violations(method: string, pathname: string, response: { status: number; headers: Headers; body: string }): string[] {
  const operationId = operationFor(method, pathname)
  const entry = operationId ? operations.find((o) => o.operation.operationId === operationId) : undefined
  const base = entry ? `/paths/${pointerSegment(entry.path)}/${entry.method}/responses` : '/x-unmatched-responses'
  const { node: declared, pointer } = resolve(`${base}/${response.status}`)
  const where = `${method} ${pathname} → ${response.status} (${operationId ?? 'no operation'})`
  if (!declared) return [`${where}: status not declared`]

  const problems: string[] = []
  for (const [name, header] of Object.entries((declared.headers ?? {}) as Record<string, { required?: boolean }>)) {
    if (header.required && !response.headers.has(name)) problems.push(`${where}: missing header ${name}`)
  }
  const content = declared.content as Record<string, unknown> | undefined
  const mediaType = response.headers.get('content-type')?.split(';')[0]?.trim()
  if (!content) {
    if (response.body !== '') problems.push(`${where}: declared without a body, got one`)
    return problems
  }
  if (!mediaType || !(mediaType in content)) return [...problems, `${where}: content type ${mediaType} not declared`]
  if (response.status >= 400 && mediaType !== 'application/problem+json') problems.push(`${where}: error is not problem+json`)
  // The answer to HEAD is GET's without the body (RFC 9110 §9.3.2).
  if (method.toUpperCase() === 'HEAD') {
    if (response.body !== '') problems.push(`${where}: a HEAD response has a body`)
    return problems
  }
  // A stream's events are checked one by one as a test reads them (eventViolations).
  if (mediaType === 'text/event-stream') return problems
  const schemaPointer = `${pointer}/content/${pointerSegment(mediaType)}/schema`
  const value = mediaType.endsWith('json') ? JSON.parse(response.body) : response.body
  const validate = validatorAt(resolve(schemaPointer).pointer)
  if (!validate(value)) problems.push(`${where}: body does not match: ${ajv.errorsText(validate.errors)}`)
  return problems
}

const eventData: Record<string, string> = {
  'task.created': '/components/schemas/Task',
  'task.updated': '/components/schemas/Task',
  reminder: '/components/schemas/Task',
  'task.deleted': '/components/schemas/DeletedTask',
}

/** What an event of a task event stream breaks of the contract's TaskEvent (and its data's schema). */
export function eventViolations(event: { id?: string; event: string; data: string }): string[] {
  const validate = validatorAt('/components/schemas/TaskEvent')
  if (!validate(event)) return [`event ${JSON.stringify(event)}: ${ajv.errorsText(validate.errors)}`]
  const data = JSON.parse(event.data) as unknown
  const schema = eventData[event.event]
  const validateData = schema ? validatorAt(schema) : undefined
  if (validateData && !validateData(data)) return [`${event.event} data: ${ajv.errorsText(validateData.errors)}`]
  if (!schema && JSON.stringify(data) !== '{}') return [`${event.event} data must be {}`]
  return []
}

/** Every (operation, declared status) pair of the contract. */
export function declaredPairs(): Recorded[] {
  return operations.flatMap(({ operation }) =>
    Object.keys(operation.responses).map((status) => ({ operation: operation.operationId, status: Number(status) })),
  )
}
