// On-disk cache of what RPC adapters fetch, in SQLite (better-sqlite3): blocks and headers by
// chain id and number, accounts and slots by chain id, the state's block (the parent's hash) and
// key, code by hash. Re-running a cached block makes no RPC call.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type BetterSqlite3 from 'better-sqlite3'
import type { Address, Hash, Hex } from 'viem'
import type { RpcBlock } from '../block.js'
import { StateError } from '../errors.js'
import type { KnownAccount, KnownState } from './known.js'

/** A header's fields the adapters need. */
export type CachedHeader = { number: bigint; hash: Hash; stateRoot: Hash }

const SCHEMA = `
CREATE TABLE IF NOT EXISTS blocks (chain_id INTEGER NOT NULL, number INTEGER NOT NULL, hash TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (chain_id, number));
CREATE INDEX IF NOT EXISTS blocks_by_hash ON blocks (chain_id, hash);
CREATE TABLE IF NOT EXISTS headers (chain_id INTEGER NOT NULL, number INTEGER NOT NULL, hash TEXT NOT NULL, state_root TEXT NOT NULL, PRIMARY KEY (chain_id, number)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS accounts (chain_id INTEGER NOT NULL, block TEXT NOT NULL, address TEXT NOT NULL, absent INTEGER NOT NULL, balance TEXT, nonce TEXT, code_hash TEXT, storage_complete INTEGER, PRIMARY KEY (chain_id, block, address)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS storage (chain_id INTEGER NOT NULL, block TEXT NOT NULL, address TEXT NOT NULL, slot TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (chain_id, block, address, slot)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS code (hash TEXT PRIMARY KEY, code TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seeds (chain_id INTEGER NOT NULL, block TEXT NOT NULL, source TEXT NOT NULL, PRIMARY KEY (chain_id, block, source)) WITHOUT ROWID;
`

/** better-sqlite3 is an optional peer dependency: loaded only when a cache is opened. */
function sqlite(): typeof BetterSqlite3 {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('better-sqlite3') as typeof BetterSqlite3
  } catch (e) {
    throw new StateError(`the cache needs the better-sqlite3 package: npm install better-sqlite3 (${(e as Error).message.split('\n')[0]})`, { cause: e })
  }
}

type AccountRow = { address: string; absent: number; balance: string; nonce: string; code_hash: string; storage_complete: number }

/** A SQLite file of fetched blocks and state. Open one per process; close it when done. */
export class StateCache {
  readonly path: string
  // An ES private field: the declaration files do not name better-sqlite3's types.
  readonly #db: BetterSqlite3.Database
  /** Reads answered from the cache (blocks, headers, state loads). */
  hits = 0

  /** Opens (or creates) `dir/parallel-evm-cache.sqlite`; `dir` may also name the file itself. */
  constructor(dir: string) {
    this.path = dir.endsWith('.sqlite') ? dir : join(dir, 'parallel-evm-cache.sqlite')
    try {
      if (!dir.endsWith('.sqlite')) mkdirSync(dir, { recursive: true })
      this.#db = new (sqlite())(this.path)
      // WAL: readers in other processes are not blocked by a run that writes.
      this.#db.pragma('journal_mode = WAL')
      this.#db.exec(SCHEMA)
    } catch (e) {
      throw new StateError(`cannot open the cache at ${this.path}: ${(e as Error).message}`, { cause: e })
    }
  }

  close(): void {
    this.#db.close()
  }

  getBlock(chainId: number, ref: { number?: bigint; hash?: Hash }): RpcBlock | undefined {
    const row = (
      ref.hash !== undefined
        ? this.#db.prepare('SELECT json FROM blocks WHERE chain_id = ? AND hash = ?').get(chainId, ref.hash.toLowerCase())
        : this.#db.prepare('SELECT json FROM blocks WHERE chain_id = ? AND number = ?').get(chainId, ref.number)
    ) as { json: string } | undefined
    if (!row) return undefined
    this.hits++
    return JSON.parse(row.json) as RpcBlock
  }

  putBlock(chainId: number, block: RpcBlock): void {
    this.#db.prepare('INSERT OR REPLACE INTO blocks (chain_id, number, hash, json) VALUES (?, ?, ?, ?)').run(chainId, BigInt(block.number), String(block.hash).toLowerCase(), JSON.stringify(block))
  }

  getHeader(chainId: number, number: bigint): CachedHeader | undefined {
    const row = this.#db.prepare('SELECT hash, state_root FROM headers WHERE chain_id = ? AND number = ?').get(chainId, number) as { hash: Hash; state_root: Hash } | undefined
    if (!row) return undefined
    this.hits++
    return { number, hash: row.hash, stateRoot: row.state_root }
  }

  putHeader(chainId: number, header: CachedHeader): void {
    this.#db.prepare('INSERT OR REPLACE INTO headers (chain_id, number, hash, state_root) VALUES (?, ?, ?, ?)').run(chainId, header.number, header.hash, header.stateRoot)
  }

  /** Code by its hash (shared by every block and chain). */
  getCode(codeHash: Hash): Hex | undefined {
    const row = this.#db.prepare('SELECT code FROM code WHERE hash = ?').get(codeHash) as { code: Hex } | undefined
    if (row) this.hits++
    return row?.code
  }

  /** Whether the seed of `source` (e.g. the prestate trace) for this state is stored. */
  hasSeed(chainId: number, stateBlock: Hash, source: string): boolean {
    return this.#db.prepare('SELECT 1 FROM seeds WHERE chain_id = ? AND block = ? AND source = ?').get(chainId, stateBlock, source) !== undefined
  }

  putSeed(chainId: number, stateBlock: Hash, source: string): void {
    this.#db.prepare('INSERT OR IGNORE INTO seeds (chain_id, block, source) VALUES (?, ?, ?)').run(chainId, stateBlock, source)
  }

  /** Adds every cached account, slot and block hash of this state to `known`; returns how many keys. */
  loadState(chainId: number, stateBlock: Hash, known: KnownState): number {
    const accounts = this.#db.prepare('SELECT address, absent, balance, nonce, code_hash, storage_complete FROM accounts WHERE chain_id = ? AND block = ?').all(chainId, stateBlock) as AccountRow[]
    const codeOf = this.#db.prepare('SELECT code FROM code WHERE hash = ?')
    for (const r of accounts) {
      const address = r.address as Address
      if (r.absent) {
        known.setAbsent(address)
        continue
      }
      let code: Hex = '0x'
      if (r.code_hash) {
        const c = codeOf.get(r.code_hash) as { code: Hex } | undefined
        // Without its code the account is not usable: leave it out so it is fetched again.
        if (!c) continue
        code = c.code
      }
      known.setAccount(address, { balance: BigInt(r.balance), nonce: BigInt(r.nonce), code, storageComplete: r.storage_complete === 1 })
    }
    const slots = this.#db.prepare('SELECT address, slot, value FROM storage WHERE chain_id = ? AND block = ?').all(chainId, stateBlock) as {
      address: Address
      slot: Hex
      value: Hex
    }[]
    for (const s of slots) known.setSlot(s.address, s.slot, s.value)
    if (accounts.length + slots.length > 0) this.hits++
    return accounts.length + slots.length
  }

  /** Stores accounts (with their code and listed slots) and absent accounts of one state, in one transaction. */
  putState(chainId: number, stateBlock: Hash, entries: { accounts: [Address, KnownAccount & { codeHash: Hash | null }][]; absent: Address[]; slots: [Address, Hex, Hex][] }): void {
    const putAccount = this.#db.prepare('INSERT OR REPLACE INTO accounts (chain_id, block, address, absent, balance, nonce, code_hash, storage_complete) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
    const putCode = this.#db.prepare('INSERT OR IGNORE INTO code (hash, code) VALUES (?, ?)')
    const putSlot = this.#db.prepare('INSERT OR REPLACE INTO storage (chain_id, block, address, slot, value) VALUES (?, ?, ?, ?, ?)')
    this.#db.transaction(() => {
      for (const [address, a] of entries.accounts) {
        if (a.codeHash) putCode.run(a.codeHash, a.code)
        putAccount.run(chainId, stateBlock, address, 0, a.balance.toString(), a.nonce.toString(), a.codeHash, a.storageComplete ? 1 : 0)
        for (const [slot, value] of a.storage) putSlot.run(chainId, stateBlock, address, slot, value)
      }
      for (const address of entries.absent) putAccount.run(chainId, stateBlock, address, 1, null, null, null, 1)
      for (const [address, slot, value] of entries.slots) putSlot.run(chainId, stateBlock, address, slot, value)
    })()
  }
}
