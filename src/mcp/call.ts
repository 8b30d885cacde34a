import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import type { ErrorObject } from 'ajv'
import type { Request, Response } from 'express'
import { userOf } from '../auth.js'
import { misreadValues } from '../input-checks.js'
import { type FieldError, invalid, type Problem, toProblem, wordingOf } from '../problems.js'
import type { Answer, Location, Tool } from './tools.js'

export type OperationHandler = (req: Request, res: Response) => void | Promise<void>

/**
 * Runs a tool as its operation runs over HTTP, for the user of the POST: the contract's rules for the
 * arguments (defaults filled in), the checks beyond them (misreadValues), then the operation's own
 * handler. What the caller can correct (invalid arguments, a task that does not exist, another
 * version) is a tool error naming it; a server failure (5xx) is thrown, to be the POST's answer.
 */
export async function callTool(
  tool: Tool,
  handler: OperationHandler,
  args: Record<string, unknown>,
  post: Request,
): Promise<CallToolResult> {
  const input = structuredClone(args)
  if (!tool.validate(input)) return refusal(invalid((tool.validate.errors ?? []).map((e) => fieldErrorOf(tool, e))), post)
  const parts: Record<Location, Record<string, unknown>> = { path: {}, query: {}, body: {} }
  for (const [name, value] of Object.entries(input)) parts[tool.locations.get(name) ?? 'body'][name] = value
  const body = tool.rules.takesBody ? parts.body : undefined
  const misread = misreadValues(tool.rules, { query: parts.query, body })
  if (misread.length > 0) return refusal(invalid(misread), post)

  // The request as the validator hands it to a handler; the handler's Location and Link name this path.
  const path = tool.path.replace(/\{([^}]+)\}/g, (_, name: string) => encodeURIComponent(String(parts.path[name])))
  const req = { method: tool.method.toUpperCase(), path, originalUrl: path, params: parts.path, query: parts.query, body, headers: {} }
  const request = Object.assign(req, { id: post.id, user_id: userOf(post) }) as unknown as Request
  const { answer, res } = capture()
  try {
    await handler(request, res)
  } catch (error) {
    const problem = toProblem(error, request)
    if (problem.status >= 500) throw error
    return refusal(problem, post)
  }
  const output = tool.output(answer, input)
  return { content: [{ type: 'text', text: JSON.stringify(output) }], structuredContent: output }
}

// As express-openapi-validator names what failed: the missing or unknown property, else the value's own place.
function fieldErrorOf(tool: Tool, error: ErrorObject): FieldError {
  const { missingProperty, additionalProperty } = error.params as { missingProperty?: string; additionalProperty?: string }
  const property = missingProperty ?? additionalProperty
  const pointer = property === undefined ? error.instancePath : `${error.instancePath}/${property}`
  const argument = pointer.split('/')[1] ?? ''
  const location = tool.locations.get(argument) ?? 'body'
  return { location, path: location === 'body' ? pointer : argument, message: wordingOf(error.message) }
}

// A tool error says what the 4xx problem of the HTTP operation says, each field by its argument's name.
function refusal(problem: Problem, post: Request): CallToolResult {
  const { title, detail, errors } = problem.body(String(post.id))
  const text = errors ? `Invalid arguments:\n${errors.map((e) => `- ${argumentOf(e)}: ${e.message}`).join('\n')}` : `${title}: ${detail}`
  return { isError: true, content: [{ type: 'text', text }] }
}

function argumentOf({ location, path }: FieldError): string {
  if (location !== 'body') return path
  return path.slice(1) || 'arguments'
}

/** The parts of an Express response the operation handlers use to answer, keeping the answer. */
function capture(): { answer: Answer; res: Response } {
  const answer: Answer = { status: 200, headers: new Map(), body: undefined }
  const res = {
    status: (code: number) => {
      answer.status = code
      return res
    },
    setHeader: (name: string, value: unknown) => {
      answer.headers.set(name.toLowerCase(), String(value))
      return res
    },
    location: (url: string) => res.setHeader('Location', url),
    links: (links: Record<string, string>) =>
      res.setHeader(
        'Link',
        Object.entries(links)
          .map(([rel, url]) => `<${url}>; rel="${rel}"`)
          .join(', '),
      ),
    json: (body: unknown) => {
      answer.body = body
      return res
    },
    end: () => res,
  }
  return { answer, res: res as unknown as Response }
}
