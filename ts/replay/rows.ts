// The rows a replayed block becomes in a database output (SQLite, Postgres): one definition of
// the tables and of how a block fills them, so that every output holds the same rows.
import type { ReplayedBlock } from './replay.js'

/** A column: its name and its kind (each output maps kinds to its own SQL types). */
export type Column = { name: string; kind: 'int' | 'bigint' | 'text'; nullable?: boolean }

export type Table = {
  name: TableName
  columns: Column[]
  primaryKey: string[]
  /** Columns unique on their own. */
  unique?: string[]
  /** Secondary indexes (columns). */
  indexes: { name: string; columns: string[] }[]
}

export type TableName = 'blocks' | 'transactions' | 'logs' | 'account_changes' | 'storage_changes' | 'code'

/** A row's values, in the order of its table's columns. */
export type Row = (string | number | null)[]

export type BlockRows = Record<TableName, Row[]>

const int = (name: string, nullable = false): Column => ({ name, kind: 'int', nullable })
const bigint = (name: string): Column => ({ name, kind: 'bigint' })
const text = (name: string, nullable = false): Column => ({ name, kind: 'text', nullable })

/** The tables, in the order a block's rows are written (blocks first: its key guards the rest). */
export const TABLES: Table[] = [
  {
    name: 'blocks',
    columns: [bigint('number'), text('hash'), text('parent_hash'), bigint('timestamp'), text('miner'), bigint('gas_used'), int('tx_count'), int('verified')],
    primaryKey: ['number'],
    unique: ['hash'],
    indexes: [],
  },
  {
    name: 'transactions',
    columns: [
      bigint('block_number'),
      int('tx_index'),
      text('hash'),
      text('from_address'),
      text('to_address', true),
      text('type'),
      int('status'),
      bigint('gas_used'),
      bigint('cumulative_gas_used'),
      text('contract_address', true),
    ],
    primaryKey: ['block_number', 'tx_index'],
    indexes: [
      { name: 'transactions_by_hash', columns: ['hash'] },
      { name: 'transactions_by_from', columns: ['from_address', 'block_number'] },
      { name: 'transactions_by_to', columns: ['to_address', 'block_number'] },
    ],
  },
  {
    name: 'logs',
    columns: [
      bigint('block_number'),
      int('log_index'),
      int('tx_index'),
      text('tx_hash'),
      text('address'),
      text('topic0', true),
      text('topic1', true),
      text('topic2', true),
      text('topic3', true),
      text('data'),
    ],
    primaryKey: ['block_number', 'log_index'],
    indexes: [
      { name: 'logs_by_address_topic0', columns: ['address', 'topic0', 'block_number'] },
      { name: 'logs_by_topic0', columns: ['topic0', 'block_number'] },
    ],
  },
  {
    name: 'account_changes',
    columns: [text('address'), bigint('block_number'), text('balance'), bigint('nonce'), text('code_hash'), int('created'), int('deleted'), int('storage_cleared')],
    primaryKey: ['address', 'block_number'],
    indexes: [{ name: 'account_changes_by_block', columns: ['block_number'] }],
  },
  {
    name: 'storage_changes',
    columns: [text('address'), text('slot'), bigint('block_number'), text('value')],
    primaryKey: ['address', 'slot', 'block_number'],
    indexes: [{ name: 'storage_changes_by_block', columns: ['block_number'] }],
  },
  // Bytecode by hash, shared by every block that deploys it: written once, never per block.
  { name: 'code', columns: [text('hash'), text('code')], primaryKey: ['hash'], indexes: [] },
]

const lower = (s: string | null | undefined) => (s ? s.toLowerCase() : null)

/** The rows of one block, for every table. */
export function blockRows(b: ReplayedBlock): BlockRows {
  const number = Number(b.number)
  const v = b.verification
  const verified = v.gasUsed && v.logsBloom && v.receiptsRoot !== false && v.requestsHash !== false
  const rows: BlockRows = { blocks: [], transactions: [], logs: [], account_changes: [], storage_changes: [], code: [] }
  rows.blocks.push([number, b.hash, b.parentHash, Number(BigInt(b.block.timestamp as string)), lower(b.block.miner as string), Number(b.gasUsed), b.receipts.length, verified ? 1 : 0])
  const txs = b.block.transactions as { from?: string; to?: string | null }[]
  for (const r of b.receipts) {
    const tx = txs[r.transactionIndex] ?? {}
    rows.transactions.push([
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
    ])
    for (const l of r.logs) {
      rows.logs.push([number, l.logIndex, l.transactionIndex, l.transactionHash, lower(l.address), l.topics[0] ?? null, l.topics[1] ?? null, l.topics[2] ?? null, l.topics[3] ?? null, l.data])
    }
  }
  for (const [address, d] of Object.entries(b.stateDiff)) {
    const a = address.toLowerCase()
    rows.account_changes.push([a, number, `0x${d.balance.toString(16)}`, d.nonce, d.codeHash, d.created ? 1 : 0, d.deleted ? 1 : 0, d.storageCleared ? 1 : 0])
    if (d.code) rows.code.push([d.codeHash, d.code])
    for (const [slot, value] of Object.entries(d.storage)) rows.storage_changes.push([a, slot, number, value])
  }
  return rows
}

/** `CREATE TABLE/INDEX IF NOT EXISTS` statements for every table, with the output's SQL types. */
export function schemaStatements(types: Record<Column['kind'], string>, tableSuffix = ''): string[] {
  const out: string[] = []
  for (const t of TABLES) {
    const columns = t.columns.map((c) => `${c.name} ${types[c.kind]}${c.nullable ? '' : ' NOT NULL'}${t.unique?.includes(c.name) ? ' UNIQUE' : ''}`)
    out.push(`CREATE TABLE IF NOT EXISTS ${t.name} (${columns.join(', ')}, PRIMARY KEY (${t.primaryKey.join(', ')}))${tableSuffix && t.name !== 'blocks' ? ` ${tableSuffix}` : ''}`)
    for (const i of t.indexes) out.push(`CREATE INDEX IF NOT EXISTS ${i.name} ON ${t.name} (${i.columns.join(', ')})`)
  }
  return out
}
