import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { projectRoot } from './paths.js'

export const httpMethods = ['get', 'head', 'put', 'post', 'delete', 'patch'] as const
export type HttpMethod = (typeof httpMethods)[number]

export interface Operation {
  operationId: string
  security?: unknown[]
  responses: Record<string, unknown>
}
export interface Contract {
  paths: Record<string, Partial<Record<HttpMethod, Operation>>>
  [key: string]: unknown
}

const file = join(projectRoot, 'contracts/openapi.yaml')

/** contracts/openapi.yaml, the single source of truth: its text and its parsed document. */
export const contractYaml = readFileSync(file, 'utf8')
export const contract = parse(contractYaml) as Contract

export interface Parameter {
  name: string
  in: 'path' | 'query' | 'header' | 'cookie'
  required?: boolean
  description?: string
  schema?: unknown
}

/** The node a local `$ref` points to (followed until it is not a `$ref`), or the node itself. */
export function resolved<T>(doc: Contract, node: unknown): T {
  const ref = (node as { $ref?: string } | undefined)?.$ref
  if (!ref) return node as T
  const target = ref
    .slice(2)
    .split('/')
    .map((key) => key.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce<unknown>((at, key) => (at as Record<string, unknown>)[key], doc)
  return resolved(doc, target)
}

/** An operation's parameters, the path item's and its own, resolved. */
export function parametersOf(doc: Contract, path: string, method: HttpMethod): Parameter[] {
  const item = doc.paths[path] as { parameters?: unknown[] } & Record<HttpMethod, { parameters?: unknown[] } | undefined>
  return [...(item.parameters ?? []), ...(item[method]?.parameters ?? [])].map((p) => resolved<Parameter>(doc, p))
}

/** Every operation of the contract with its path and method. */
export function operationsOf(doc: Contract) {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    httpMethods.flatMap((method) => {
      const operation = item[method]
      return operation ? [{ path, method, operation }] : []
    }),
  )
}
