// A range replay spread over BullMQ workers into Postgres, against real servers (redis-server and
// postgres from the system's packages, started on free loopback ports; the suite skips, saying
// so, without them) and a mined anvil chain of 300+ blocks: three worker processes, one killed
// with SIGKILL while it holds a chunk, and the Postgres tables equal row for row those of one
// `replay --postgres` run; enqueuing again adds nothing; Redis stopped and restarted mid-run.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clusterStatus, enqueueRange, PostgresSink, type ReplayedBlock } from '../dist/index.js'
import { mineChain } from '../dist/bench/anvil-chain.js'
import { TABLES } from '../dist/replay/rows.js'
import { repoRoot } from './helpers.js'
import { type Anvil, startAnvil } from './support/anvil.js'
import { type PostgresServer, type RedisServer, serverBinaries, startPostgres, startRedis, stopRedisForGood } from './support/servers.js'

const { missing } = serverBinaries()
if (missing) console.warn(`cluster tests skipped: ${missing}`)

const FROM = 2n
const CHUNK = 25
let anvil: Anvil
let redis: RedisServer
let postgres: PostgresServer
let TO: bigint
let singleUrl: string
const started = Date.now()

type Run = { status: number | null; stdout: string; stderr: string }

function cli(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn('node', [join(repoRoot, 'dist', 'cli', 'main.js'), ...args])
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += String(d)))
    child.stderr.on('data', (d) => (stderr += String(d)))
    child.on('close', (status) => resolve({ status, stdout, stderr }))
  })
}

type WorkerEvent = { event: string; id?: string; from?: number; to?: number; written?: number; alreadyPresent?: boolean }
type WorkerProcess = { child: ChildProcessWithoutNullStreams; events: WorkerEvent[]; stderr: string; exit: Promise<number | null>; onEvent?: (e: WorkerEvent) => void }

function worker(queue: string, database: string): WorkerProcess {
  const child = spawn('node', [
    join(repoRoot, 'dist', 'cli', 'main.js'),
    'cluster',
    'work',
    '--redis',
    redis.url,
    '--queue',
    queue,
    '--rpc',
    anvil.url,
    '--postgres',
    database,
    '--threads',
    '1',
    '--prefetch',
    '4',
    // A killed worker's chunk goes to another within a few seconds.
    '--lock-duration',
    '3000',
    '--json',
  ])
  const w: WorkerProcess = { child, events: [], stderr: '', exit: new Promise((r) => child.once('close', (code) => r(code))) }
  let buffer = ''
  child.stdout.on('data', (d) => {
    buffer += String(d)
    const lines = buffer.split('\n')
    buffer = lines.pop()!
    for (const l of lines.filter(Boolean)) {
      const e = JSON.parse(l) as WorkerEvent
      w.events.push(e)
      w.onEvent?.(e)
    }
  })
  child.stderr.on('data', (d) => (w.stderr += String(d)))
  return w
}

async function until(what: string, f: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

/** Every table's rows, ordered by its key (blocks limited to `from`..`to` where given). */
async function tables(url: string, range?: [bigint, bigint]): Promise<Record<string, unknown[]>> {
  const { Client } = require('pg') as typeof import('pg')
  const c = new Client({ connectionString: url })
  await c.connect()
  try {
    const out: Record<string, unknown[]> = {}
    for (const t of TABLES) {
      const column = t.name === 'blocks' ? 'number' : 'block_number'
      const where = range && t.name !== 'code' ? ` WHERE ${column} BETWEEN ${range[0]} AND ${range[1]}` : ''
      out[t.name] = (await c.query({ text: `SELECT * FROM ${t.name}${where} ORDER BY ${t.primaryKey.join(', ')}`, rowMode: 'array' })).rows
    }
    return out
  } finally {
    await c.end()
  }
}

describe.skipIf(missing !== undefined)('cluster replay: BullMQ workers into Postgres', () => {
  beforeAll(async () => {
    ;[anvil, redis, postgres] = await Promise.all([startAnvil({ hardfork: 'cancun', chainId: 31337, accounts: 20 }), startRedis(), startPostgres()])
    const mined = await mineChain({ rpcUrl: anvil.url, blocks: 300, txsPerBlock: 4, seed: 29 })
    TO = mined.last
    singleUrl = await postgres.createDatabase('single')
    console.log(`cluster suite: servers up and ${TO - FROM + 1n} blocks mined in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  }, 240_000)

  afterAll(async () => {
    await Promise.all([anvil?.stop(), redis && stopRedisForGood(redis), postgres?.stop()])
    console.log(`cluster suite: ${((Date.now() - started) / 1000).toFixed(1)} s in all`)
  })

  it('replay --postgres: the whole range in one process, every block once, schema versioned', async () => {
    const base = ['replay', '--rpc', anvil.url, `${FROM}..${TO}`, '--state', 'proofs', '--hardfork', 'cancun', '--chain-id', '31337', '--threads', '2', '--postgres', singleUrl, '--json']
    const r = await cli(base)
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    const rows = await tables(singleUrl)
    expect(rows.blocks!.length).toBe(Number(TO - FROM + 1n))
    expect(rows.blocks!.every((b) => (b as unknown[])[7] === 1)).toBe(true)
    expect(rows.transactions!.length).toBeGreaterThan(1000)
    expect(rows.storage_changes!.length).toBeGreaterThan(300)
    // Without --resume a database that holds blocks is refused; with it, nothing is left to do.
    const refused = await cli(base)
    expect(refused.status).toBe(2)
    expect(refused.stderr).toMatch(/already holds replayed blocks/)
    const resumed = await cli([...base, '--resume'])
    expect(resumed.status).toBe(0)
    expect((await tables(singleUrl)).blocks!.length).toBe(Number(TO - FROM + 1n))

    // Opened at once by several processes, the schema is created once; another version is refused.
    const scratch = await postgres.createDatabase('scratch')
    const sinks = await Promise.all([1, 2, 3].map(() => PostgresSink.open({ url: scratch })))
    await Promise.all(sinks.map((s) => s.close()))
    const { Client } = require('pg') as typeof import('pg')
    const c = new Client({ connectionString: scratch })
    await c.connect()
    expect((await c.query('SELECT version FROM parallel_evm_schema')).rows).toEqual([{ version: 1 }])
    await c.query('UPDATE parallel_evm_schema SET version = 99')
    await c.end()
    await expect(PostgresSink.open({ url: scratch })).rejects.toMatchObject({ code: 'STATE_ERROR', details: expect.stringMatching(/schema version 99/) })
    await expect(PostgresSink.open({ url: 'mysql://x' })).rejects.toMatchObject({ code: 'INVALID_INPUT' })
  }, 120_000)

  it('chunks written at once: the same bytecode in opposite orders (no deadlock, each code row once), overlapping ranges (shared blocks once)', async () => {
    const url = await postgres.createDatabase('crossing')
    const [a, b] = await Promise.all([PostgresSink.open({ url }), PostgresSink.open({ url })])
    const code = (n: number) => ({ hash: `0x${String(n).repeat(64)}`, code: `0x60${String(n).repeat(2)}` })
    const block = (n: number, deployed: { hash: string; code: string }) =>
      ({
        number: BigInt(n),
        hash: `0x${n.toString(16).padStart(64, '0')}`,
        parentHash: `0x${(n - 1).toString(16).padStart(64, '0')}`,
        block: { timestamp: '0x1', miner: '0x0000000000000000000000000000000000000001', transactions: [] },
        gasUsed: 0n,
        receipts: [],
        verification: { gasUsed: true, logsBloom: true },
        stateDiff: {
          [`0x${n.toString(16).padStart(40, '0')}`]: { balance: 0n, nonce: 1n, codeHash: deployed.hash, code: deployed.code, created: true, deleted: false, storageCleared: false, storage: {} },
        },
      }) as unknown as ReplayedBlock
    // Each writer holds its first block's rows until the other has its own: the old per-block
    // writes then waited on each other's bytecode row in a circle (Postgres: deadlock detected).
    let arrived = 0
    let release = () => {}
    const both = new Promise<void>((r) => (release = r))
    const meet = async () => {
      if (++arrived === 2) release()
      await both
    }
    const chunk = async function* (first: ReplayedBlock, second: ReplayedBlock) {
      yield first
      await meet()
      await new Promise((r) => setTimeout(r, 200))
      yield second
    }
    try {
      const writes = await Promise.all([a.writeRange(1n, 2n, () => chunk(block(1, code(1)), block(2, code(2)))), b.writeRange(3n, 4n, () => chunk(block(3, code(2)), block(4, code(1))))])
      expect(writes).toEqual([
        { written: 2, alreadyPresent: false },
        { written: 2, alreadyPresent: false },
      ])
      const rows = await tables(url)
      expect(rows.blocks!.length).toBe(4)
      expect(rows.code).toEqual([
        [code(1).hash, code(1).code],
        [code(2).hash, code(2).code],
      ])
      // Overlapping ranges at once (chunks of another size): the shared blocks are written by one
      // writer, waited for and skipped by the other; both commit.
      const slow = async function* (numbers: number[]) {
        for (const n of numbers) {
          yield block(n, code(n % 2 ? 1 : 2))
          await new Promise((r) => setTimeout(r, 100))
        }
      }
      const overlapping = await Promise.all([a.writeRange(5n, 8n, () => slow([5, 6, 7, 8])), b.writeRange(7n, 10n, () => slow([7, 8, 9, 10]))])
      expect(overlapping.reduce((n, w) => n + w.written, 0)).toBe(6)
      expect((await tables(url)).blocks!.map((r) => (r as unknown[])[0])).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'])
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  }, 60_000)

  it('three workers, one killed with SIGKILL holding a chunk: the tables equal the single run row for row; enqueue again adds nothing', async () => {
    const queue = 'kill'
    const clusterUrl = await postgres.createDatabase('cluster')
    const first = await enqueueRange({ redisUrl: redis.url, queue, from: FROM, to: TO, chunk: CHUNK, state: 'proofs', chainId: 31337, hardfork: 'cancun' })
    const chunks = Math.ceil(Number(TO - FROM + 1n) / CHUNK)
    expect(first).toEqual({ chunks, added: chunks, alreadyQueued: 0 })

    const workers = [worker(queue, clusterUrl), worker(queue, clusterUrl), worker(queue, clusterUrl)]
    // Killed 300 ms into its first chunk (or at once if it already finished it).
    let killedChunk: string | undefined
    workers[0]!.onEvent = (e) => {
      if (e.event !== 'started' || killedChunk) return
      killedChunk = e.id
      setTimeout(() => workers[0]!.child.kill('SIGKILL'), 300)
    }
    expect(await workers[0]!.exit).toBe(null)
    expect(killedChunk).toBeDefined()
    expect(workers[0]!.events.some((e) => e.event === 'done' && e.id === killedChunk)).toBe(false)

    await until('every chunk completed', async () => (await clusterStatus({ redisUrl: redis.url, queue })).completed === chunks, 150_000)
    const status = await clusterStatus({ redisUrl: redis.url, queue })
    expect(status).toMatchObject({ waiting: 0, active: 0, completed: chunks, failed: 0, failedChunks: [] })
    expect(status.blocksPerSecond).toBeGreaterThan(0)
    // The killed worker's chunk was done by one of the others.
    const survivors = workers.slice(1).flatMap((w) => w.events)
    expect(survivors.some((e) => e.event === 'done' && e.id === killedChunk && e.written === CHUNK)).toBe(true)
    // Workers writing different chunks at once never fail each other (shared bytecode rows once deadlocked them).
    expect(survivors.filter((e) => e.event === 'failed')).toEqual([])

    // SIGTERM: both stop cleanly.
    for (const w of workers.slice(1)) w.child.kill('SIGTERM')
    expect(await Promise.all(workers.slice(1).map((w) => w.exit))).toEqual([0, 0])
    for (const w of workers.slice(1)) expect(w.stderr).toBe('')

    const [cluster, single] = await Promise.all([tables(clusterUrl), tables(singleUrl)])
    for (const t of TABLES) expect({ table: t.name, rows: cluster[t.name] }).toEqual({ table: t.name, rows: single[t.name] })

    const again = await cli([
      'cluster',
      'enqueue',
      '--redis',
      redis.url,
      '--queue',
      queue,
      `${FROM}..${TO}`,
      '--chunk',
      String(CHUNK),
      '--state',
      'proofs',
      '--chain-id',
      '31337',
      '--hardfork',
      'cancun',
      '--json',
    ])
    expect(again.status).toBe(0)
    expect(JSON.parse(again.stdout)).toEqual({ chunks, added: 0, alreadyQueued: chunks })
    const st = await cli(['cluster', 'status', '--redis', redis.url, '--queue', queue, '--json'])
    expect(st.status).toBe(0)
    expect(JSON.parse(st.stdout)).toMatchObject({ waiting: 0, active: 0, completed: chunks, failed: 0 })
  }, 200_000)

  it('Redis stopped and restarted mid-run: the workers reconnect and the run completes, every block once', async () => {
    const queue = 'restart'
    const to = FROM + 149n
    const url = await postgres.createDatabase('restart')
    await enqueueRange({ redisUrl: redis.url, queue, from: FROM, to, chunk: CHUNK, state: 'proofs', chainId: 31337, hardfork: 'cancun' })
    const workers = [worker(queue, url), worker(queue, url)]
    await until('a first chunk done', async () => workers.some((w) => w.events.some((e) => e.event === 'done')), 60_000)
    expect((await clusterStatus({ redisUrl: redis.url, queue })).completed).toBeLessThan(4)
    await redis.stop()
    await new Promise((r) => setTimeout(r, 1500))
    await redis.start()
    await until('every chunk completed', async () => (await clusterStatus({ redisUrl: redis.url, queue })).completed === 6, 120_000)
    // Chunks of another size over blocks already there: acknowledged without replaying or writing.
    expect(await enqueueRange({ redisUrl: redis.url, queue, from: FROM, to: FROM + 99n, chunk: 50, state: 'proofs', chainId: 31337, hardfork: 'cancun' })).toMatchObject({ added: 2 })
    await until('the overlapping chunks acknowledged', async () => (await clusterStatus({ redisUrl: redis.url, queue })).completed === 8, 60_000)
    const overlapping = workers.flatMap((w) => w.events).filter((e) => e.event === 'done' && (e.id === 'blocks-2-51' || e.id === 'blocks-52-101'))
    expect(overlapping.map((e) => [e.written, e.alreadyPresent])).toEqual([
      [0, true],
      [0, true],
    ])
    for (const w of workers) w.child.kill('SIGTERM')
    expect(await Promise.all(workers.map((w) => w.exit))).toEqual([0, 0])
    const [cluster, single] = await Promise.all([tables(url), tables(singleUrl, [FROM, to])])
    for (const t of TABLES.filter((t) => t.name !== 'code')) expect({ table: t.name, rows: cluster[t.name] }).toEqual({ table: t.name, rows: single[t.name] })
    // Bytecode is shared across blocks: the part of the chain holds a subset of the whole's.
    const code = new Set(single.code!.map((r) => JSON.stringify(r)))
    expect(cluster.code!.every((r) => code.has(JSON.stringify(r)))).toBe(true)
  }, 200_000)
})

describe('cluster CLI: bad arguments', () => {
  it('exits 2 with a message, before connecting anywhere', async () => {
    const runs = await Promise.all([
      cli(['cluster', 'enqueue', '--redis', 'http://127.0.0.1:1', '2..5', '--hardfork', 'cancun']),
      cli(['cluster', 'enqueue', '--redis', 'redis://127.0.0.1:1', 'latest']),
      cli(['cluster', 'enqueue', '--redis', 'redis://127.0.0.1:1', '2..5', '--chain-id', '5']),
      cli(['cluster', 'enqueue', '--redis', 'redis://127.0.0.1:1', '5..2', '--hardfork', 'cancun']),
      cli(['cluster', 'work', '--redis', 'redis://127.0.0.1:1', '--rpc', 'http://127.0.0.1:1', '--postgres', 'mysql://x']),
    ])
    expect(runs.map((r) => r.status)).toEqual([2, 2, 2, 2, 2])
    expect(runs.map((r) => r.stderr)).toEqual([
      expect.stringMatching(/Redis URL/),
      expect.stringMatching(/not 'latest'/),
      expect.stringMatching(/hardfork/),
      expect.stringMatching(/empty range/),
      expect.stringMatching(/Postgres URL/),
    ])
  })
})
