// Real Redis and Postgres servers for the cluster tests and benchmark, from the system's packages (Debian: redis-server,
// postgresql; see .ci/run): each on a free 127.0.0.1 port with its data in a temp dir, removed on
// stop. `serverBinaries()` says what is missing so suites can skip, saying so.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createServer } from 'node:net'
import { join } from 'node:path'

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

function onPath(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim() : undefined
}

/** Postgres's server binaries: Debian keeps them in /usr/lib/postgresql/<version>/bin. */
function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql'
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a))
    if (versions[0]) return join(root, versions[0], 'bin')
  }
  const initdb = onPath('initdb')
  return initdb ? join(initdb, '..') : undefined
}

/** The binaries found, and a line saying what is missing (undefined when nothing is). */
export function serverBinaries(): { redis?: string; postgres?: string; missing?: string } {
  const redis = onPath('redis-server')
  const postgres = postgresBin()
  const missing = [!redis && 'redis-server', !postgres && 'postgres (initdb)'].filter(Boolean)
  return { redis, postgres, missing: missing.length ? `${missing.join(' and ')} not installed (apt-get install redis-server postgresql)` : undefined }
}

async function waitFor(what: string, child: ChildProcess, ready: () => Promise<boolean>, log: () => string): Promise<void> {
  const deadline = Date.now() + 30_000
  while (!(await ready().catch(() => false))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`${what} did not start: ${log()}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
}

export type RedisServer = { url: string; port: number; stop(): Promise<void>; start(): Promise<void>; stopped: boolean }

/** redis-server on a free port; append-only file on, so a stop and start keeps the queue. */
export async function startRedis(): Promise<RedisServer> {
  const bin = serverBinaries().redis
  if (!bin) throw new Error('redis-server not installed')
  const dir = mkdtempSync(join(tmpdir(), 'parallel-evm-redis-'))
  const port = await freePort()
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    stopped: true,
    async start() {
      let log = ''
      child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--dir', dir, '--protected-mode', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] })
      child.stdout?.on('data', (d) => (log += String(d)))
      child.stderr?.on('data', (d) => (log += String(d)))
      const c = child
      exited = new Promise((r) => c.once('exit', () => r()))
      await waitFor(
        'redis-server',
        c,
        async () => log.includes('Ready to accept connections'),
        () => log,
      )
      server.stopped = false
    },
    async stop() {
      if (child && child.exitCode === null) {
        child.kill('SIGTERM')
        await exited
      }
      server.stopped = true
    },
  }
  await server.start()
  const stop = server.stop
  let removed = false
  server.stop = async () => {
    await stop()
    // Only the final stop of a test removes the data (`start` after it is not expected).
    if (!removed && (server as { final?: boolean }).final) {
      removed = true
      rmSync(dir, { recursive: true, force: true })
    }
  }
  return server
}

/** Stops a Redis server for good and removes its data. */
export async function stopRedisForGood(server: RedisServer): Promise<void> {
  ;(server as { final?: boolean }).final = true
  await server.stop()
}

export type PostgresServer = {
  port: number
  /** A database's URL (user postgres, no password on loopback). */
  url(database?: string): string
  /** Creates a database and returns its URL. */
  createDatabase(name: string): Promise<string>
  stop(): Promise<void>
}

/** initdb + postgres on a free port in a temp dir; as root, run as the `postgres` user (postgres refuses root). */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = serverBinaries().postgres
  if (!bin) throw new Error('postgres not installed')
  const dir = mkdtempSync(join(tmpdir(), 'parallel-evm-pg-'))
  const asRoot = process.getuid?.() === 0
  const user = asRoot ? spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }) : undefined
  if (asRoot) {
    if (user?.status !== 0) throw new Error('running as root needs a postgres user to run the server')
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim())
    chownSync(dir, Number(user.stdout.trim()), gid)
  }
  const run = (cmd: string, args: string[]) => (asRoot ? (['runuser', ['-u', 'postgres', '--', cmd, ...args]] as const) : ([cmd, args] as const))
  const data = join(dir, 'data')
  const [initCmd, initArgs] = run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'])
  const init = spawnSync(initCmd, initArgs, { encoding: 'utf8' })
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`)
  const port = await freePort()
  // Durability is not what the tests check: no fsync, for speed on a shared machine.
  const [cmd, args] = run(join(bin, 'postgres'), [
    '-D',
    data,
    '-p',
    String(port),
    '-h',
    '127.0.0.1',
    '-k',
    dir,
    '-c',
    'fsync=off',
    '-c',
    'synchronous_commit=off',
    '-c',
    'full_page_writes=off',
    '-c',
    'max_connections=100',
  ])
  let log = ''
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout?.on('data', (d) => (log += String(d)))
  child.stderr?.on('data', (d) => (log += String(d)))
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  const url = (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Client } = require('pg') as { Client: new (o: { connectionString: string }) => { connect(): Promise<void>; query(sql: string): Promise<unknown>; end(): Promise<void> } }
  const query = async (sql: string) => {
    const c = new Client({ connectionString: url() })
    await c.connect()
    try {
      await c.query(sql)
    } finally {
      await c.end()
    }
  }
  await waitFor(
    'postgres',
    child,
    async () => {
      await query('SELECT 1')
      return true
    },
    () => log,
  )
  return {
    port,
    url,
    async createDatabase(name) {
      await query(`CREATE DATABASE ${name}`)
      return url(name)
    },
    async stop() {
      if (child.exitCode === null) {
        // SIGINT is postgres's fast shutdown (runuser passes it on).
        const [stopCmd, stopArgs] = run(join(bin, 'pg_ctl'), ['-D', data, 'stop', '-m', 'fast', '-w'])
        spawnSync(stopCmd, stopArgs)
        await exited
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
