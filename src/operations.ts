import type { Request, RequestHandler, Response } from 'express'
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
  openapi?: {
    schema?: { operationId?: string }
    /** Coerced by the validator to the contract's types. */
    pathParams?: Record<string, string>
    /** As sent (percent-decoded); added by patches/express-openapi-validator+5.6.2.patch. */
    rawPathParams?: Record<string, string>
  }
}

/** What express-openapi-validator matched: the operation and the path parameters. */
export function matchedOperation(req: Request): Matched['openapi'] {
  return (req as Matched).openapi
}

// Every GET has a HEAD twin in the contract (`<operationId>Head`), answered by the GET's handler:
// Node sends the status and headers of a response to HEAD and drops its body.
type HeadOperationId = Extract<OperationId, `${string}Head`>

/** Exactly one handler per operationId (HEAD twins excepted): a missing or extra one fails the type check. */
export type Handlers = { [O in Exclude<OperationId, HeadOperationId>]: Handler<O> }

/**
 * The route table is the contract: express-openapi-validator has already matched the request to one
 * of its operations (or answered 404/405), so the handler is looked up by that operationId rather
 * than by matching the path a second time. Every operation needs a handler, checked at start-up.
 */
export function dispatchOperations(contract: Contract, handlers: Handlers): RequestHandler {
  const byId = new Map(Object.entries(handlers) as unknown as [string, RequestHandler][])
  const operations = operationsOf(contract)
  for (const { path, method, operation } of operations) {
    if (method === 'head') {
      const get = operations.find((o) => o.path === path && o.method === 'get')?.operation.operationId
      if (operation.operationId !== `${get}Head`) throw new Error(`HEAD ${path} must be named ${get}Head, after its GET`)
      byId.set(operation.operationId, byId.get(get as string) as RequestHandler)
    }
    if (!byId.get(operation.operationId)) throw new Error(`No handler for operation ${operation.operationId}: run npm run codegen`)
  }
  return (req, res, next) => {
    const matched = matchedOperation(req)
    const handler = byId.get(matched?.schema?.operationId as string)
    if (!handler) return next()
    req.params = matched?.pathParams ?? {}
    return handler(req, res, next)
  }
}
