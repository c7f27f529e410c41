// loadBlock: a block with full transactions from a node (or the cache), and a lazy source of the
// hashes BLOCKHASH may need: only those an execution reports missing are fetched.
import { numberToHex, type Hash } from 'viem'
import type { RpcBlock } from '../block.js'
import { InvalidInputError } from '../errors.js'
import type { StateCache, CachedHeader } from './cache.js'
import { fail, hash, object, quantity } from './check.js'
import { mapLimit, OFFLINE, Rpc, type RpcOptions, type RpcSource } from './client.js'

export type BlockRef = { blockNumber: bigint | number | 'latest'; blockHash?: never } | { blockHash: Hash; blockNumber?: never }

/** Without `client`/`rpcUrl` only `cache` answers (offline replay). */
export type LoadBlockParameters = (RpcSource | { rpc: Rpc } | { client?: undefined; rpcUrl?: undefined }) &
  BlockRef & {
    /** Blocks and headers are read from and written to it (by chain id and number). */
    cache?: StateCache
    /** The chain id (saves an `eth_chainId` call; needed for zero calls on a cached block). */
    chainId?: number
    /** Retries, timeout and batching of a client built from `rpcUrl`. */
    rpcOptions?: RpcOptions
  }

export type LoadedBlock = {
  /** The block as JSON-RPC returns it, with full transactions. */
  block: RpcBlock
  number: bigint
  hash: Hash
  chainId: number
  /** Hashes of earlier blocks, fetched on demand (from the cache first) and checked against their numbers. */
  blockHashes(numbers: readonly (number | bigint)[]): Promise<Map<bigint, Hash>>
  /** Number, hash and state root of an earlier block's header. */
  header(number: bigint): Promise<CachedHeader>
}

export function rpcOf(params: RpcSource | { rpc: Rpc } | object, options?: RpcOptions): Rpc {
  if ('rpc' in params && params.rpc instanceof Rpc) return params.rpc
  if ('client' in params || 'rpcUrl' in params) return new Rpc(params as RpcSource, options)
  return new Rpc(OFFLINE)
}

/** Checks a full block's shape and that it is the one asked for. */
function checkBlock(value: unknown, ref: { number?: bigint; hash?: Hash }): RpcBlock {
  const method = 'eth_getBlockBy' + (ref.hash ? 'Hash' : 'Number')
  const b = object(method, value, 'block')
  const number = quantity(method, b.number, 'block number')
  const blockHash = hash(method, b.hash, 'block hash')
  hash(method, b.parentHash, 'parent hash')
  hash(method, b.stateRoot, 'state root')
  hash(method, b.receiptsRoot, 'receipts root')
  quantity(method, b.gasUsed, 'gas used')
  if (ref.number !== undefined && number !== ref.number) fail(method, `asked for block ${ref.number}, got block ${number}`)
  if (ref.hash !== undefined && blockHash !== ref.hash.toLowerCase()) fail(method, `asked for block ${ref.hash}, got ${blockHash}`)
  if (!Array.isArray(b.transactions)) fail(method, 'transactions is not an array')
  for (const tx of b.transactions) {
    // Hashes only: the node ignored the full-transactions flag.
    object(method, tx, 'transaction')
  }
  return b as RpcBlock
}

/**
 * Loads a block with full transactions from a node (a viem PublicClient or an RPC URL), or from
 * `cache` when it holds it. BLOCKHASH values are fetched lazily through `blockHashes(numbers)`.
 *
 * @example
 * const { block, blockHashes } = await loadBlock({ rpcUrl: 'http://127.0.0.1:8545', blockNumber: 123n })
 */
export async function loadBlock(params: LoadBlockParameters): Promise<LoadedBlock> {
  const rpc = rpcOf(params, params.rpcOptions)
  const { cache } = params
  let number: bigint | undefined
  if (params.blockHash === undefined) {
    const n = params.blockNumber
    if (n !== 'latest') {
      if ((typeof n !== 'bigint' && !Number.isSafeInteger(n)) || n < 0) throw new InvalidInputError(`blockNumber must be a non-negative integer or 'latest', got ${String(n)}`)
      number = BigInt(n)
    }
  } else if (!/^0x[0-9a-fA-F]{64}$/.test(params.blockHash)) {
    throw new InvalidInputError(`blockHash must be a 32-byte hex hash, got ${String(params.blockHash)}`)
  }
  const chainId = params.chainId ?? (await rpc.chainId())
  const ref = { number, hash: params.blockHash }
  // 'latest' moves: never served from the cache.
  let block = number !== undefined || ref.hash ? cache?.getBlock(chainId, ref) : undefined
  if (!block) {
    const raw = ref.hash
      ? await rpc.request<unknown>('eth_getBlockByHash', [ref.hash, true])
      : await rpc.request<unknown>('eth_getBlockByNumber', [number === undefined ? 'latest' : numberToHex(number), true])
    if (raw === null) throw new InvalidInputError(`block ${ref.hash ?? (number === undefined ? 'latest' : number)} not found on the node`)
    block = checkBlock(raw, ref)
    cache?.putBlock(chainId, block)
  }
  return withHeaders(rpc, cache, chainId, block)
}

/** A block with on-demand access to earlier headers (cache first). */
export function withHeaders(rpc: Rpc, cache: StateCache | undefined, chainId: number, block: RpcBlock): LoadedBlock {
  const blockNumber = BigInt(block.number)
  const headers = new Map<bigint, Promise<CachedHeader>>()
  const header = (n: bigint): Promise<CachedHeader> => {
    let p = headers.get(n)
    if (!p) {
      p = fetchHeader(rpc, cache, chainId, n)
      headers.set(n, p)
    }
    return p
  }
  return {
    block,
    number: blockNumber,
    hash: block.hash as Hash,
    chainId,
    header,
    async blockHashes(numbers) {
      const wanted = [...new Set(numbers.map((n) => BigInt(n)))]
      for (const n of wanted) {
        if (n >= blockNumber || n < 0n) throw new InvalidInputError(`no hash of block ${n} is available to block ${blockNumber}`)
      }
      const found = await mapLimit(wanted, 8, header)
      return new Map(found.map((h) => [h.number, h.hash]))
    },
  }
}

async function fetchHeader(rpc: Rpc, cache: StateCache | undefined, chainId: number, n: bigint): Promise<CachedHeader> {
  const cached = cache?.getHeader(chainId, n)
  if (cached) return cached
  const method = 'eth_getBlockByNumber'
  const raw = await rpc.request<unknown>(method, [numberToHex(n), false])
  if (raw === null) fail(method, `block ${n} is not on the node`)
  const b = object(method, raw, 'header')
  const got = quantity(method, b.number, 'block number')
  if (got !== n) fail(method, `asked for block ${n}, got block ${got}`)
  const header = { number: n, hash: hash(method, b.hash, 'block hash'), stateRoot: hash(method, b.stateRoot, 'state root') }
  cache?.putHeader(chainId, header)
  return header
}
