// Replay output as a SQLite database (better-sqlite3): blocks, transactions with their receipts,
// logs, and state changes (accounts: balance, nonce, code; storage), indexed for the usual
// queries: logs by address and topic0, changes by account. Each block is written in one
// transaction, so the database never holds part of a block and a resume starts after the last
// block it holds.
import type BetterSqlite3 from 'better-sqlite3'
import type { Hash } from 'viem'
import { InvalidInputError, StateError } from '../errors.js'
import type { OutputPosition, ReplaySink, SinkOptions } from './jsonl.js'
import type { ReplayedBlock } from './replay.js'
import { blockRows, schemaStatements, TABLES } from './rows.js'

// SQLite's INTEGER holds 64 bits; WITHOUT ROWID keeps composite-key tables clustered by their key.
const SCHEMA = `${schemaStatements({ int: 'INTEGER', bigint: 'INTEGER', text: 'TEXT' }, 'WITHOUT ROWID').join(';\n')};`

/** better-sqlite3 is an optional peer dependency: loaded only when an output is opened. */
function sqlite(): typeof BetterSqlite3 {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('better-sqlite3') as typeof BetterSqlite3
  } catch (e) {
    throw new StateError(`the SQLite output needs the better-sqlite3 package: npm install better-sqlite3 (${(e as Error).message.split('\n')[0]})`, { cause: e })
  }
}

/** Writes each replayed block into a SQLite database, one transaction per block. */
export class SqliteSink implements ReplaySink {
  readonly path: string
  last: OutputPosition | undefined
  // An ES private field: the declaration files do not name better-sqlite3's types.
  readonly #db: BetterSqlite3.Database
  readonly #writeBlock: (block: ReplayedBlock) => void

  constructor(path: string, options: SinkOptions = {}) {
    this.path = path
    try {
      this.#db = new (sqlite())(path)
      this.#db.pragma('journal_mode = WAL')
      // A block's transaction survives a crash of the process (not of the machine) at NORMAL.
      this.#db.pragma('synchronous = NORMAL')
      this.#db.exec(SCHEMA)
    } catch (e) {
      throw new StateError(`cannot open the SQLite output at ${path}: ${(e as Error).message}`, { cause: e })
    }
    const row = this.#db.prepare('SELECT number, hash FROM blocks ORDER BY number DESC LIMIT 1').get() as { number: number; hash: Hash } | undefined
    if (row) {
      if (!options.resume) {
        this.#db.close()
        throw new InvalidInputError(`${path} already holds replayed blocks: resume, or write to a new file`)
      }
      this.last = { number: BigInt(row.number), hash: row.hash }
    }
    const db = this.#db
    const inserts = new Map(
      TABLES.map((t) => {
        // Bytecode is keyed by hash: a second block deploying the same code adds nothing.
        const verb = t.name === 'code' ? 'INSERT OR IGNORE' : 'INSERT'
        return [t.name, db.prepare(`${verb} INTO ${t.name} (${t.columns.map((c) => c.name).join(', ')}) VALUES (${t.columns.map(() => '?').join(', ')})`)]
      }),
    )
    this.#writeBlock = db.transaction((b: ReplayedBlock) => {
      const rows = blockRows(b)
      for (const t of TABLES) for (const row of rows[t.name]) inserts.get(t.name)!.run(...row)
    })
  }

  write(block: ReplayedBlock): void {
    this.#writeBlock(block)
    this.last = { number: block.number, hash: block.hash }
  }

  close(): void {
    this.#db.close()
  }
}
