import { type Contract, type HttpMethod, parametersOf, resolved } from './contract.js'
import type { FieldError } from './problems.js'

/** What an operation's input needs beyond its JSON Schemas, read from the contract once. */
export interface InputRules {
  /** Integer parameters: over HTTP their text must be a plain decimal numeral (src/app.ts). */
  readonly integers: { readonly path: string[]; readonly query: string[] }
  /** Date-time query parameters and top-level body fields. */
  readonly instants: { readonly query: string[]; readonly body: string[] }
  readonly takesBody: boolean
}

interface Schema {
  type?: unknown
  format?: string
  properties?: Record<string, unknown>
}

export function inputRulesOf(doc: Contract, path: string, method: HttpMethod): InputRules {
  const parameters = parametersOf(doc, path, method)
  const named = (where: string, test: (schema: Schema | undefined) => boolean) =>
    parameters.filter((p) => p.in === where && test(resolved(doc, p.schema))).map((p) => p.name)
  const isInteger = (schema: Schema | undefined) => schema?.type === 'integer'
  const isInstant = (schema: Schema | undefined) => schema?.format === 'date-time'
  const { requestBody } = (doc.paths[path]?.[method] ?? {}) as { requestBody?: unknown }
  const content = resolved<{ content?: Record<string, { schema?: unknown }> } | undefined>(doc, requestBody)?.content
  const properties = resolved<Schema | undefined>(doc, content?.['application/json']?.schema)?.properties ?? {}
  return {
    integers: { path: named('path', isInteger), query: named('query', isInteger) },
    instants: {
      query: named('query', isInstant),
      body: Object.keys(properties).filter((name) => isInstant(resolved(doc, properties[name]))),
    },
    takesBody: requestBody !== undefined,
  }
}

/**
 * What the contract lets through but the API would store or read differently, refused rather than
 * reinterpreted, in the query and body of a request or of a tool call alike:
 * - a date-time that RFC 3339 allows but that cannot be stored and returned as given (storableInstant);
 * - strings with lone UTF-16 surrogates (`"\ud800"` in JSON), which would be stored as U+FFFD; and in a
 *   body whose bytes were not all UTF-8 (`invalidUtf8`), the strings the decoder put U+FFFD in.
 */
export function misreadValues(
  rules: InputRules,
  input: { query: Record<string, unknown>; body: unknown; invalidUtf8?: boolean },
): FieldError[] {
  const { query, body, invalidUtf8 = false } = input
  const errors: FieldError[] = []
  for (const name of rules.instants.query) {
    const value = query[name]
    if (typeof value === 'string' && !storableInstant(value)) errors.push({ location: 'query', path: name, message: instantMessage })
  }
  for (const [name, value] of Object.entries(query)) {
    if ([value].flat().some((item) => typeof item === 'string' && !wellFormed(item))) {
      errors.push({ location: 'query', path: name, message: surrogateMessage })
    }
  }
  if (typeof body === 'object' && body !== null) {
    for (const name of rules.instants.body) {
      const value = (body as Record<string, unknown>)[name]
      if (typeof value === 'string' && !storableInstant(value)) errors.push({ location: 'body', path: `/${name}`, message: instantMessage })
    }
    findMisreadStrings(body, '', invalidUtf8, errors)
  }
  return errors
}

// RFC 3339 allows a leap second (:60) and years 0000 and 9999 with any offset; PostgreSQL and
// JavaScript do not agree on those, and the API answers in UTC: an instant is from year 1 to 9999 in UTC.
const instantMessage = 'must be a date-time from year 0001 to 9999 in UTC, without a leap second'
const surrogateMessage = 'must not contain unpaired UTF-16 surrogates'

function storableInstant(text: string): boolean {
  const ms = Date.parse(text)
  if (Number.isNaN(ms)) return false
  const year = new Date(ms).getUTCFullYear()
  return year >= 1 && year <= 9999
}

function findMisreadStrings(value: unknown, path: string, invalidUtf8: boolean, errors: FieldError[]): void {
  if (typeof value === 'string') {
    if (!wellFormed(value)) {
      errors.push({ location: 'body', path, message: surrogateMessage })
    } else if (invalidUtf8 && value.includes('\ufffd')) {
      errors.push({ location: 'body', path, message: 'must be UTF-8 (the body has bytes that are not)' })
    }
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, child] of Object.entries(value)) {
      findMisreadStrings(child, `${path}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`, invalidUtf8, errors)
    }
  }
}

// String.prototype.isWellFormed is in Node 20 but not in the ES2023 library the type check uses.
const wellFormed = (text: string) => (text as string & { isWellFormed(): boolean }).isWellFormed()
