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

/** Every operation of the contract with its path and method. */
export function operationsOf(doc: Contract) {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    httpMethods.flatMap((method) => {
      const operation = item[method]
      return operation ? [{ path, method, operation }] : []
    }),
  )
}
