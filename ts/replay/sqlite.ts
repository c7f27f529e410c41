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

const SCHEMA = `
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE, parent_hash TEXT NOT NULL, timestamp INTEGER NOT NULL, miner TEXT NOT NULL, gas_used INTEGER NOT NULL, tx_count INTEGER NOT NULL, verified INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS transactions (block_number INTEGER NOT NULL, tx_index INTEGER NOT NULL, hash TEXT NOT NULL, from_address TEXT NOT NULL, to_address TEXT, type TEXT NOT NULL, status INTEGER NOT NULL, gas_used INTEGER NOT NULL, cumulative_gas_used INTEGER NOT NULL, contract_address TEXT, PRIMARY KEY (block_number, tx_index)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS transactions_by_hash ON transactions (hash);
CREATE INDEX IF NOT EXISTS transactions_by_from ON transactions (from_address, block_number);
CREATE INDEX IF NOT EXISTS transactions_by_to ON transactions (to_address, block_number);
CREATE TABLE IF NOT EXISTS logs (block_number INTEGER NOT NULL, log_index INTEGER NOT NULL, tx_index INTEGER NOT NULL, tx_hash TEXT NOT NULL, address TEXT NOT NULL, topic0 TEXT, topic1 TEXT, topic2 TEXT, topic3 TEXT, data TEXT NOT NULL, PRIMARY KEY (block_number, log_index)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS logs_by_address_topic0 ON logs (address, topic0, block_number);
CREATE INDEX IF NOT EXISTS logs_by_topic0 ON logs (topic0, block_number);
CREATE TABLE IF NOT EXISTS account_changes (address TEXT NOT NULL, block_number INTEGER NOT NULL, balance TEXT NOT NULL, nonce INTEGER NOT NULL, code_hash TEXT NOT NULL, created INTEGER NOT NULL, deleted INTEGER NOT NULL, storage_cleared INTEGER NOT NULL, PRIMARY KEY (address, block_number)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS account_changes_by_block ON account_changes (block_number);
CREATE TABLE IF NOT EXISTS storage_changes (address TEXT NOT NULL, slot TEXT NOT NULL, block_number INTEGER NOT NULL, value TEXT NOT NULL, PRIMARY KEY (address, slot, block_number)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS storage_changes_by_block ON storage_changes (block_number);
CREATE TABLE IF NOT EXISTS code (hash TEXT PRIMARY KEY, code TEXT NOT NULL) WITHOUT ROWID;
`

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
    const putBlock = db.prepare('INSERT INTO blocks (number, hash, parent_hash, timestamp, miner, gas_used, tx_count, verified) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
    const putTx = db.prepare(
      'INSERT INTO transactions (block_number, tx_index, hash, from_address, to_address, type, status, gas_used, cumulative_gas_used, contract_address) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    )
    const putLog = db.prepare('INSERT INTO logs (block_number, log_index, tx_index, tx_hash, address, topic0, topic1, topic2, topic3, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
    const putAccount = db.prepare('INSERT INTO account_changes (address, block_number, balance, nonce, code_hash, created, deleted, storage_cleared) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
    const putSlot = db.prepare('INSERT INTO storage_changes (address, slot, block_number, value) VALUES (?, ?, ?, ?)')
    const putCode = db.prepare('INSERT OR IGNORE INTO code (hash, code) VALUES (?, ?)')
    const lower = (s: string | null | undefined) => (s ? s.toLowerCase() : null)
    this.#writeBlock = db.transaction((b: ReplayedBlock) => {
      const number = Number(b.number)
      const v = b.verification
      const verified = v.gasUsed && v.logsBloom && v.receiptsRoot !== false && v.requestsHash !== false
      putBlock.run(number, b.hash, b.parentHash, Number(BigInt(b.block.timestamp as string)), lower(b.block.miner as string), Number(b.gasUsed), b.receipts.length, verified ? 1 : 0)
      const txs = b.block.transactions as { from?: string; to?: string | null }[]
      for (const r of b.receipts) {
        const tx = txs[r.transactionIndex] ?? {}
        putTx.run(
          number,
          r.transactionIndex,
          r.transactionHash,
          lower(tx.from) ?? '',
          lower(tx.to),
          r.type,
          r.status === 'success' ? 1 : 0,
          Number(r.gasUsed),
          Number(r.cumulativeGasUsed),
          lower(r.contractAddress),
        )
        for (const l of r.logs) {
          putLog.run(number, l.logIndex, l.transactionIndex, l.transactionHash, lower(l.address), l.topics[0] ?? null, l.topics[1] ?? null, l.topics[2] ?? null, l.topics[3] ?? null, l.data)
        }
      }
      for (const [address, d] of Object.entries(b.stateDiff)) {
        const a = address.toLowerCase()
        putAccount.run(a, number, `0x${d.balance.toString(16)}`, d.nonce, d.codeHash, d.created ? 1 : 0, d.deleted ? 1 : 0, d.storageCleared ? 1 : 0)
        if (d.code) putCode.run(d.codeHash, d.code)
        for (const [slot, value] of Object.entries(d.storage)) putSlot.run(a, slot, number, value)
      }
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
