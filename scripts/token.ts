// npm run token -- <user-id> [expires-in, e.g. 1h, 7d]: mints an HS256 token for local use.
import { developmentSecret, mintToken } from '../src/auth.js'
import { ConfigError, readConfig } from '../src/config.js'

const [user_id, expiresIn = '24h'] = process.argv.slice(2)
if (!user_id) {
  console.error('usage: npm run token -- <user-id> [expires-in, e.g. 1h, 7d]')
  process.exit(2)
}
try {
  const config = readConfig()
  const secret = config.auth.secret ?? (config.auth.jwksUrl ? undefined : developmentSecret(config.dataDir).secret)
  if (secret === undefined) {
    console.error('todo-api: tokens come from your Better Auth server (BETTER_AUTH_JWKS_URL is set, BETTER_AUTH_SECRET is not).')
    process.exit(1)
  }
  console.log(await mintToken({ ...config.auth, secret }, user_id, expiresIn))
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  console.error(`todo-api: ${error.message}`)
  process.exit(1)
}
