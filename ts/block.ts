// Block input: a raw JSON-RPC block or a viem `Block` (bigints) becomes the JSON-RPC bytes the
// engine parses. Only representation changes here (bigint/number -> hex quantity).
import { numberToHex, transactionType, type Block, type Hash, type Hex } from 'viem'
import { InvalidInputError, fromNative } from './errors.js'
import { native, type NativePreparedBlock } from './native.js'

/** A block as `eth_getBlockByNumber(n, true)` returns it: hex quantities, full transactions. */
export type RpcBlock = {
  number: Hex
  hash?: Hash | null
  parentHash: Hash
  transactions: readonly Record<string, unknown>[]
  [key: string]: unknown
}

/** Chain rules for a block: `{ chainId: 31337, hardfork: 'cancun' }`; omitted fields mean mainnet. */
export type ChainConfig = { chainId?: number; hardfork?: string }

/** Anything `executeBlock` takes as a block. */
export type BlockLike = RpcBlock | Block<bigint, true> | PreparedBlock | Uint8Array

/** A block parsed once by the engine; pass it to `executeBlock` many times without re-parsing. */
export type PreparedBlock = NativePreparedBlock

// viem maps type bytes to names ('0x2' -> 'eip1559'); blocks from viem carry the names.
const TYPE_HEX: Record<string, Hex> = Object.fromEntries(Object.entries(transactionType).map(([hex, name]) => [name, hex as Hex]))

// viem keeps numbers for small fields (nonce, yParity, chainId, transactionIndex) and bigint for the
// rest; JSON-RPC wants every quantity as hex, and the transaction type as its byte.
function toRpcValue(key: string, value: unknown): unknown {
  if (typeof value === 'bigint' || typeof value === 'number') return numberToHex(value)
  if (key === 'type' && typeof value === 'string' && !value.startsWith('0x')) {
    const hex = TYPE_HEX[value]
    if (!hex) throw new InvalidInputError(`unknown transaction type '${value}'`)
    return hex
  }
  if (Array.isArray(value)) return value.map((v) => toRpcValue('', v))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      if (k === 'typeHex' || v === undefined) continue
      out[k] = toRpcValue(k, v)
    }
    return out
  }
  return value
}

function isViemBlock(block: object): boolean {
  const b = block as Record<string, unknown>
  return typeof b.number === 'bigint' || typeof b.gasUsed === 'bigint' || typeof b.timestamp === 'bigint'
}

/** A viem `Block` (with full transactions) as a JSON-RPC block; a JSON-RPC block is returned as is. */
export function toRpcBlock(block: RpcBlock | Block<bigint, true>): RpcBlock {
  if (block === null || typeof block !== 'object' || Array.isArray(block)) {
    throw new InvalidInputError(`block must be an object, got ${block === null ? 'null' : typeof block}`)
  }
  return (isViemBlock(block) ? toRpcValue('', block) : block) as RpcBlock
}

export function isPreparedBlock(value: unknown): value is PreparedBlock {
  return value instanceof native().PreparedBlock
}

/** JSON bytes of an object, with any bigint written as a hex quantity. */
export function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? numberToHex(v) : v)))
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** Options of `prepareBlock`. */
export type PrepareBlockOptions = {
  /** Fork rules (default: Ethereum mainnet's schedule). */
  chain?: ChainConfig
  /**
   * Recover every transaction's sender from its signature and reject the block
   * (`InvalidTransactionError`) when one is invalid or differs from `from`. Off by default: the
   * engine trusts `from`, which the node serving the block recovered already; recovery costs
   * tens of µs per transaction.
   */
  verifySignatures?: boolean
  /**
   * Check the block against its own header: transactions root (from the EIP-2718 envelopes),
   * withdrawals root, block hash (keccak of the RLP header) and every signature recovering to its
   * `from` (on all cores). Failures do not reject: they are checks in `verifyBlock`'s report.
   */
  checkHeader?: boolean
}

/** Parses a block once in the engine (off the JS thread). */
export async function prepareBlock(block: Exclude<BlockLike, PreparedBlock>, options: PrepareBlockOptions = {}): Promise<PreparedBlock> {
  const bytes = block instanceof Uint8Array ? asBuffer(block) : jsonBytes(toRpcBlock(block))
  const chain = options.chain === undefined ? undefined : jsonBytes(options.chain)
  for (const flag of ['verifySignatures', 'checkHeader'] as const) {
    if (options[flag] !== undefined && typeof options[flag] !== 'boolean') throw new InvalidInputError(`${flag} must be a boolean, got ${typeof options[flag]}`)
  }
  try {
    return await native().prepareBlock(bytes, chain, options.verifySignatures ?? false, options.checkHeader ?? false)
  } catch (e) {
    throw fromNative(e)
  }
}

export { asBuffer }
