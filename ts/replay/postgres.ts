// Replay output in Postgres (the `pg` package): the same tables and rows as the SQLite output
// (./rows.ts), a schema created on first use and versioned, each block written at most once.
// `write` puts one block in one transaction (the `replay --postgres` path, resumable like
// SQLite); `writeRange` puts a whole chunk in one transaction (the cluster workers), so a worker
// that dies mid-chunk leaves nothing behind and a chunk already there is not written again; its
// rows go in multi-row statements, bytecode last (see RangeRows: concurrent chunks never deadlock).
import type { Hash } from 'viem'
import { InvalidInputError, StateError } from '../errors.js'
import type { OutputPosition, ReplaySink, SinkOptions } from './jsonl.js'
import type { ReplayedBlock } from './replay.js'
import { type BlockRows, blockRows, type Row, schemaStatements, type Table, TABLES } from './rows.js'

/** Version of the tables' layout; a database holding another version is refused, not altered. */
export const POSTGRES_SCHEMA_VERSION = 1

// Advisory lock keys: (class, key) pairs, the class spelling 'pevm'.
const LOCK_CLASS = 0x7065766d
const SCHEMA_LOCK = 0

// Minimal shapes of the `pg` objects used here, so the declaration files need no @types/pg.
type PgClient = { query<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: R[]; rowCount: number | null }>; release(err?: boolean | Error): void }
type PgPool = { connect(): Promise<PgClient>; query: PgClient['query']; end(): Promise<void>; on(event: 'error', f: (e: Error) => void): void }

/** `pg` is loaded when a Postgres output is opened. */
function pg(): { Pool: new (options: { connectionString: string; max?: number }) => PgPool } {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('pg')
  } catch (e) {
    throw new StateError(`the Postgres output needs the pg package: npm install pg (${(e as Error).message.split('\n')[0]})`, { cause: e })
  }
}

export type PostgresSinkParameters = SinkOptions & {
  /** postgres://user:password@host:port/database */
  url: string
  /** Connections in the pool (default 4). */
  connections?: number
}

/** What `writeRange` did. */
export type PostgresRangeWrite = {
  /** Blocks written by this call. */
  written: number
  /** True when every block of the range was already there (nothing replayed, nothing written). */
  alreadyPresent: boolean
}

// Postgres takes at most 65535 parameters per statement.
const MAX_PARAMS = 60_000

async function insertRows(client: PgClient, table: Table, rows: Row[]): Promise<void> {
  const width = table.columns.length
  const per = Math.floor(MAX_PARAMS / width)
  // Bytecode is keyed by hash and shared across blocks: a second deployment adds nothing.
  const conflict = table.name === 'code' ? ' ON CONFLICT DO NOTHING' : ''
  for (let i = 0; i < rows.length; i += per) {
    const batch = rows.slice(i, i + per)
    const values = batch.map((_, r) => `(${table.columns.map((_, c) => `$${r * width + c + 1}`).join(', ')})`)
    await client.query(`INSERT INTO ${table.name} (${table.columns.map((c) => c.name).join(', ')}) VALUES ${values.join(', ')}${conflict}`, batch.flat())
  }
}

/**
 * A range's rows gathered table by table and written in multi-row statements (a few statements
 * per chunk instead of several per block), each table flushed when a statement's worth is held.
 * Bytecode rows are the exception: they are shared across ranges, so two writers of different
 * ranges may insert the same hash, and each waits on the other's row until the other commits.
 * Written last, once per hash and in hash order, they are taken by every writer in the same order
 * (no deadlock) and only moments before its commit (no long wait).
 */
class RangeRows {
  readonly #client: PgClient
  readonly #rows = new Map<Table, Row[]>()
  readonly #code = new Map<string, Row>()

  constructor(client: PgClient) {
    this.#client = client
  }

  /** A claimed block's rows, but for its `blocks` row (written by the claim). */
  async add(rows: BlockRows): Promise<void> {
    for (const t of TABLES.slice(1)) {
      if (t.name === 'code') {
        for (const r of rows.code) this.#code.set(r[0] as string, r)
        continue
      }
      if (rows[t.name].length === 0) continue
      const held = this.#rows.get(t) ?? []
      for (const r of rows[t.name]) held.push(r)
      this.#rows.set(t, held)
      if (held.length >= Math.floor(MAX_PARAMS / t.columns.length)) {
        this.#rows.delete(t)
        await insertRows(this.#client, t, held)
      }
    }
  }

  async flush(): Promise<void> {
    for (const [t, rows] of this.#rows) await insertRows(this.#client, t, rows)
    this.#rows.clear()
    const code = TABLES.find((t) => t.name === 'code')!
    const sorted = [...this.#code.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r)
    this.#code.clear()
    if (sorted.length > 0) await insertRows(this.#client, code, sorted)
  }
}

/**
 * Puts a block's row in `blocks` (inside the caller's transaction): its number is the key, so
 * this claims the block. A block already there with the same hash is left as it is (returns
 * false); with another hash it is an error. A writer that added it and has not committed yet is
 * waited for.
 */
async function claimBlock(client: PgClient, b: ReplayedBlock, row: Row): Promise<boolean> {
  const cols = TABLES[0]!.columns.map((c) => c.name)
  const put = await client.query(`INSERT INTO blocks (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')}) ON CONFLICT (number) DO NOTHING RETURNING number`, row)
  if (put.rowCount !== 0) return true
  const { rows: held } = await client.query<{ hash: string }>('SELECT hash FROM blocks WHERE number = $1', [Number(b.number)])
  if (held[0] && held[0].hash !== b.hash) throw new StateError(`block ${b.number} is already in the database with hash ${held[0].hash}, not ${b.hash} (a reorg under the range?)`)
  return false
}

/** Writes one block's rows through `client` (inside the caller's transaction); false when it was already there. */
async function insertBlock(client: PgClient, b: ReplayedBlock): Promise<boolean> {
  const rows = blockRows(b)
  if (!(await claimBlock(client, b, rows.blocks[0]!))) return false
  for (const t of TABLES.slice(1)) if (rows[t.name].length > 0) await insertRows(client, t, rows[t.name])
  return true
}

/** Writes replayed blocks into Postgres: the tables of the SQLite output, one block at most once. */
export class PostgresSink implements ReplaySink {
  readonly url: string
  last: OutputPosition | undefined
  readonly #pool: PgPool

  private constructor(url: string, pool: PgPool) {
    this.url = url
    this.#pool = pool
  }

  /** Connects, creates the tables on first use (or checks their version), and finds where a resume starts. */
  static async open(params: PostgresSinkParameters): Promise<PostgresSink> {
    if (typeof params?.url !== 'string' || !/^postgres(ql)?:\/\//.test(params.url))
      throw new InvalidInputError(`a Postgres URL is postgres://user:password@host:port/database, got ${String(params?.url)}`)
    const pool = new (pg().Pool)({ connectionString: params.url, max: params.connections ?? 4 })
    // An idle connection the server drops must not take the process down.
    pool.on('error', () => {})
    const sink = new PostgresSink(params.url, pool)
    try {
      await sink.#migrate()
      const { rows } = await pool.query<{ number: string; hash: Hash }>('SELECT number, hash FROM blocks ORDER BY number DESC LIMIT 1')
      if (rows[0]) {
        if (!params.resume) throw new InvalidInputError(`${redact(params.url)} already holds replayed blocks: resume, or write to a new database`)
        sink.last = { number: BigInt(rows[0].number), hash: rows[0].hash }
      }
    } catch (e) {
      await pool.end().catch(() => {})
      if (e instanceof InvalidInputError || e instanceof StateError) throw e
      throw new StateError(`cannot open the Postgres output at ${redact(params.url)}: ${(e as Error).message}`, { cause: e })
    }
    return sink
  }

  /** The tables at POSTGRES_SCHEMA_VERSION, created by the first process (others wait on the lock). */
  async #migrate(): Promise<void> {
    await this.#transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, SCHEMA_LOCK])
      await client.query('CREATE TABLE IF NOT EXISTS parallel_evm_schema (version INTEGER NOT NULL)')
      const { rows } = await client.query<{ version: number }>('SELECT version FROM parallel_evm_schema')
      if (rows.length === 0) {
        for (const sql of schemaStatements({ int: 'INTEGER', bigint: 'BIGINT', text: 'TEXT' })) await client.query(sql)
        await client.query('INSERT INTO parallel_evm_schema (version) VALUES ($1)', [POSTGRES_SCHEMA_VERSION])
      } else if (rows[0]!.version !== POSTGRES_SCHEMA_VERSION) {
        throw new StateError(`the database holds parallel-evm tables at schema version ${rows[0]!.version}; this version writes version ${POSTGRES_SCHEMA_VERSION}`)
      }
    })
  }

  async #transaction<T>(f: (client: PgClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect()
    try {
      await client.query('BEGIN')
      const out = await f(client)
      await client.query('COMMIT')
      client.release()
      return out
    } catch (e) {
      // A failed ROLLBACK means a broken connection: it is dropped, not returned to the pool.
      await client.query('ROLLBACK').then(
        () => client.release(),
        () => client.release(true),
      )
      throw e
    }
  }

  /** Writes one block in its own transaction (a block already there is left as it is). */
  async write(block: ReplayedBlock): Promise<void> {
    await this.#transaction((client) => insertBlock(client, block))
    this.last = { number: block.number, hash: block.hash }
  }

  /** How many blocks of `from`..`to` the database holds. */
  async count(from: bigint, to: bigint): Promise<number> {
    const { rows } = await this.#pool.query<{ n: string }>('SELECT COUNT(*) AS n FROM blocks WHERE number BETWEEN $1 AND $2', [from.toString(), to.toString()])
    return Number(rows[0]!.n)
  }

  /**
   * Writes the blocks of `from`..`to` in one transaction. `blocks` is called only when some block
   * of the range is missing, under a lock on the range, so two writers of the same range (a chunk
   * handed to a second worker while the first still runs) write it once.
   */
  async writeRange(from: bigint, to: bigint, blocks: () => AsyncIterable<ReplayedBlock>): Promise<PostgresRangeWrite> {
    return this.#transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_CLASS, `${from}..${to}`])
      const { rows } = await client.query<{ n: string }>('SELECT COUNT(*) AS n FROM blocks WHERE number BETWEEN $1 AND $2', [from.toString(), to.toString()])
      if (Number(rows[0]!.n) === Number(to - from + 1n)) return { written: 0, alreadyPresent: true }
      const pending = new RangeRows(client)
      let written = 0
      for await (const b of blocks()) {
        // Each block is claimed as it comes (blocks already there, from an overlapping range, are
        // checked and skipped); the rest of its rows wait for a multi-row statement.
        const rows = blockRows(b)
        if (!(await claimBlock(client, b, rows.blocks[0]!))) continue
        await pending.add(rows)
        written++
      }
      await pending.flush()
      return { written, alreadyPresent: false }
    })
  }

  async close(): Promise<void> {
    await this.#pool.end()
  }
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return '(unparseable URL)'
  }
}
