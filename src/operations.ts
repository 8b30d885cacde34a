import type { Request, Response, Router } from 'express'
import type { operations } from '../generated/api.js'
import { type Contract, operationsOf } from './contract.js'

export type OperationId = keyof operations
type Op<O extends OperationId> = operations[O]
type JsonOf<T> = T extends { content: { 'application/json': infer B } } ? B : never
type ContentOf<T> = T extends { content: infer C } ? C[keyof C] : never

// Express's router hands path parameters over as the strings of the URL (the validator has checked
// them against the contract); query parameters arrive coerced and with the contract's defaults.
type PathParams<O extends OperationId> = Op<O>['parameters'] extends { path: infer P } ? { [K in keyof P]: string } : Record<string, never>
type QueryParams<O extends OperationId> = Op<O>['parameters'] extends { query?: infer Q } ? NonNullable<Q> : never
type RequestBody<O extends OperationId> =
  Op<O> extends { requestBody: infer B }
    ? JsonOf<B>
    : Op<O> extends { requestBody?: infer B }
      ? JsonOf<NonNullable<B>> | undefined
      : undefined
type Success<O extends OperationId> = Op<O>['responses'][(200 | 201) & keyof Op<O>['responses']]
type SuccessBody<O extends OperationId> = ContentOf<Success<O>>

/** A request as the validator lets it through: params, query and body typed by the contract. */
export type OperationRequest<O extends OperationId> = O extends OperationId
  ? Request<PathParams<O>, SuccessBody<O>, RequestBody<O>, QueryParams<O>>
  : never

/** Handles one operation, or several that share a function (the path and token spellings). */
export type Handler<O extends OperationId> = (req: OperationRequest<O>, res: Response<SuccessBody<O>>) => void | Promise<void>

interface Matched {
  openapi?: { schema?: { operationId?: string }; pathParams?: Record<string, string> }
}

/** What express-openapi-validator matched: the operation and the raw path parameters. */
export function matchedOperation(req: Request): Matched['openapi'] {
  return (req as Matched).openapi
}

/** Exactly one handler per operationId: a missing or extra one fails the type check. */
export type Handlers = { [O in OperationId]: Handler<O> }

/** Mounts each contract operation on its path, with its handler; the contract is the route table. */
export function mountOperations(router: Router, contract: Contract, handlers: Handlers): void {
  for (const { path, method, operation } of operationsOf(contract)) {
    const handler = handlers[operation.operationId as OperationId] as Handler<OperationId> | undefined
    if (!handler) throw new Error(`No handler for operation ${operation.operationId}: run npm run codegen`)
    router[method](path.replace(/\{(\w+)\}/g, ':$1'), handler as never)
  }
}
