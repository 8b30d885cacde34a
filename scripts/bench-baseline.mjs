// The bare baseline `npm run bench` compares the API with: node:http and postgres.js, the API's
// SQL on the same table and indexes, and a correct HS256 check with node:crypto, in as many cluster
// workers as the API gets. It does only what the benchmarked requests need, as fast as plain Node
// can: no framework, no validation beyond what a correct server must do, no logging.
// Plain JavaScript, so nothing is transpiled at run time. Env: DATABASE_URL, BETTER_AUTH_SECRET, PORT, WORKERS.
import cluster from 'node:cluster'
import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer } from 'node:http'
import postgres from 'postgres'

const workers = Number(process.env.WORKERS ?? 1)

if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i++) cluster.fork()
  process.on('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM')
  })
} else {
  serve()
}

function serve() {
  const secret = Buffer.from(process.env.BETTER_AUTH_SECRET ?? '')
  const sql = postgres(process.env.DATABASE_URL ?? '', {
    max: 10,
    onnotice: () => {},
    types: { bigint: { to: 20, from: [20], serialize: String, parse: Number } },
  })
  // Every field a task has in the API's answers, so that both servers read and write the same bytes;
  // literal SQL, as the fastest hand-written server would have it (sql(columns) quotes every name on every query).
  const columns = sql`id, user_id, title, description, completed, priority, tags, due_date, recurrence, remind_at, created_at, updated_at`
  const json = { 'content-type': 'application/json' }

  const fail = (res, status, detail) => {
    res.writeHead(status, { 'content-type': 'application/problem+json' })
    res.end(JSON.stringify({ status, detail }))
  }

  // HS256 only (pinned), signature compared in constant time, then exp/nbf with 5 s tolerance.
  const userOf = (authorization) => {
    if (!authorization?.startsWith('Bearer ')) return undefined
    const token = authorization.slice(7)
    const dot1 = token.indexOf('.')
    const dot2 = token.indexOf('.', dot1 + 1)
    if (dot1 < 0 || dot2 < 0) return undefined
    let header
    let claims
    try {
      header = JSON.parse(Buffer.from(token.slice(0, dot1), 'base64url').toString())
      claims = JSON.parse(Buffer.from(token.slice(dot1 + 1, dot2), 'base64url').toString())
    } catch {
      return undefined
    }
    if (header?.alg !== 'HS256') return undefined
    const expected = createHmac('sha256', secret).update(token.slice(0, dot2)).digest()
    const given = Buffer.from(token.slice(dot2 + 1), 'base64url')
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined
    const now = Date.now() / 1000
    if (typeof claims.exp !== 'number' || claims.exp < now - 5) return undefined
    if (typeof claims.nbf === 'number' && claims.nbf > now + 5) return undefined
    return typeof claims.sub === 'string' && claims.sub.length > 0 ? claims.sub : undefined
  }

  const readBody = (req) =>
    new Promise((resolve, reject) => {
      const chunks = []
      req.on('data', (chunk) => chunks.push(chunk))
      req.on('end', () => resolve(Buffer.concat(chunks).toString()))
      req.on('error', reject)
    })

  const handle = async (req, res) => {
    const user_id = userOf(req.headers.authorization)
    if (user_id === undefined) return fail(res, 401, 'unauthorized')
    const [path, search = ''] = req.url.split('?')
    if (path === '/api/tasks' && req.method === 'GET') {
      const limit = Number(new URLSearchParams(search).get('limit') ?? 100)
      if (!Number.isInteger(limit) || limit < 1 || limit > 500) return fail(res, 422, 'limit')
      const rows = await sql`
        select ${columns}, created_at as sort_value from tasks
        where user_id = ${user_id}
        order by created_at desc, id desc
        limit ${limit + 1}
      `
      const headers = { ...json }
      if (rows.length > limit) {
        const last = rows[limit - 1]
        const cursor = Buffer.from(JSON.stringify(['created_at', last.sort_value, last.id])).toString('base64url')
        headers.link = `</api/tasks?limit=${limit}&cursor=${cursor}>; rel="next"`
      }
      res.writeHead(200, headers)
      return res.end(JSON.stringify(rows.slice(0, limit).map(({ sort_value, ...task }) => task)))
    }
    if (path === '/api/tasks' && req.method === 'POST') {
      let body
      try {
        body = JSON.parse(await readBody(req))
      } catch {
        return fail(res, 400, 'malformed JSON')
      }
      const { title, description = null, completed = false } = body ?? {}
      if (typeof title !== 'string' || title.length < 1 || title.length > 200 || !/\S/.test(title)) return fail(res, 422, 'title')
      const [task] = await sql`
        insert into tasks (user_id, title, description, completed)
        values (${user_id}, ${title}, ${description}, ${completed})
        returning ${columns}
      `
      res.writeHead(201, { ...json, location: `/api/tasks/${task.id}` })
      return res.end(JSON.stringify(task))
    }
    const match = /^\/api\/tasks\/([1-9]\d{0,15})$/.exec(path)
    if (match && req.method === 'GET') {
      const [task] = await sql`select ${columns} from tasks where user_id = ${user_id} and id = ${Number(match[1])}`
      if (!task) return fail(res, 404, 'not found')
      res.writeHead(200, json)
      return res.end(JSON.stringify(task))
    }
    fail(res, 404, 'no route')
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => fail(res, 500, 'internal'))
  }).listen(Number(process.env.PORT ?? 8001), '127.0.0.1')
  process.on('SIGTERM', () => {
    server.close()
    server.closeIdleConnections()
    sql.end({ timeout: 1 }).then(() => process.exit(0))
  })
}
