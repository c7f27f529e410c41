// What replay fetches for one block ahead of its turn: the block (prepared for the engine) and
// the part of its pre-state its state source gives up front (the prestateTracer's trace, or
// proofs of its beneficiary, senders and recipients that the carried state lacks).
import type { Address, Hash, Hex } from 'viem'
import { prepareBlock, type ChainConfig, type PreparedBlock } from '../block.js'
import { InvalidInputError } from '../errors.js'
import { loadBlock, withHeaders, type LoadedBlock } from '../rpc/block.js'
import type { CachedHeader, StateCache } from '../rpc/cache.js'
import { mapLimit, OFFLINE, Rpc } from '../rpc/client.js'
import { KnownState } from '../rpc/known.js'
import { RpcStateAdapter, Session } from '../rpc/state.js'
import type { StateAdapter, StateSource } from '../state.js'

/**
 * Contracts whose storage a system call writes before the block's first transaction (EIP-4788
 * beacon roots, EIP-2935 block hashes). The prestateTracer shows a transaction that reads them the
 * values after that call, not the block's pre-state: their slots come from the carried state or a
 * proof instead, never from the trace (which would otherwise read as a mismatch).
 */
const PRE_BLOCK_SYSTEM_CONTRACTS = ['0x000f3df6d732807ef1319fb7b8bb8522d0beac02', '0x0000f90827f1c53a10cb7a02335b175320002935'] as Address[]

/** An `Rpc` that counts one block's calls and sends them through the range's client. */
export class BlockRpc extends Rpc {
  private turned: Promise<void> | undefined

  /** `turn`: awaited once, before the block's first request (see `replayBlocks`). */
  constructor(
    private readonly parent: Rpc,
    private turn?: () => Promise<void>,
  ) {
    super(OFFLINE)
  }

  override request<T>(method: string, params: unknown[]): Promise<T> {
    this.calls++
    if (this.turn) {
      this.turned = this.turn()
      this.turn = undefined
    }
    return this.turned ? this.turned.then(() => this.parent.request<T>(method, params)) : this.parent.request<T>(method, params)
  }

  override chainId(): Promise<number> {
    return this.parent.chainId()
  }
}

/** Headers of the range's blocks as they load: a block's parent header is usually one of them. */
export class RangeHeaders {
  private readonly headers = new Map<bigint, Promise<CachedHeader>>()

  add(number: bigint, header: Promise<CachedHeader>): void {
    // Never rejects here: a failed load is reported by its own block.
    header.catch(() => {})
    this.headers.set(number, header)
    this.headers.delete(number - 300n)
  }

  get(number: bigint): Promise<CachedHeader> | undefined {
    return this.headers.get(number)
  }
}

/** A loaded block whose earlier headers come from the range first, then the cache or the node. */
function withRangeHeaders(rpc: Rpc, cache: StateCache | undefined, chainId: number, loaded: LoadedBlock, range: RangeHeaders): LoadedBlock {
  const base = withHeaders(rpc, cache, chainId, loaded.block)
  const header = (n: bigint) => range.get(n) ?? base.header(n)
  return {
    ...base,
    header,
    async blockHashes(numbers) {
      const wanted = [...new Set(numbers.map((n) => BigInt(n)))]
      for (const n of wanted) {
        if (n >= loaded.number || n < 0n) throw new InvalidInputError(`no hash of block ${n} is available to block ${loaded.number}`)
      }
      const found = await mapLimit(wanted, 8, header)
      return new Map(found.map((h) => [h.number, h.hash]))
    },
  }
}

export type FetchContext = {
  rpc: Rpc
  cache: StateCache | undefined
  chainId: number
  chain: ChainConfig | undefined
  /**
   * `prestate`/`proofs` through an adapter's settings, a custom adapter (no carried state), or
   * a witness per block (`debug_executionWitness`, through the block's own call counter).
   */
  source: { kind: 'rpc'; adapter: RpcStateAdapter } | { kind: 'adapter'; adapter: StateAdapter } | { kind: 'witness' }
  headers: RangeHeaders
  /** Whether the carried state holds an account (proofs are not fetched for those). */
  carries(address: Address): boolean
  /** The code of a carried account (a proof for one of its slots needs no code request). */
  carriedCode(address: Address): Hex | undefined
}

/** One block, fetched. */
export type Fetched = {
  loaded: LoadedBlock
  prepared: PreparedBlock
  rpc: BlockRpc
  /** Keys fetched for the block not merged yet (rpc sources). */
  known: KnownState
  /** Fetches what a run misses (rpc sources). */
  session: Session | undefined
  /** What a custom adapter loaded. */
  adapterSource: StateSource | undefined
  fetchMs: number
}

/** The block alone, first: its parent hash is checked before its state is awaited. */
export type Fetching = { block: Promise<LoadedBlock>; all: Promise<Fetched> }

/**
 * Starts fetching block `number`; its first request to the node waits for `turn()`. `fresh` (a
 * refetch after a reorg) skips the cache's copy of the block, which may be the one the reorg
 * replaced, and stores the node's in its place.
 */
export function fetchBlock(ctx: FetchContext, number: bigint, fresh = false, turn?: () => Promise<void>): Fetching {
  const started = performance.now()
  const rpc = new BlockRpc(ctx.rpc, turn)
  const load = fresh
    ? loadBlock({ rpc, blockNumber: number, chainId: ctx.chainId }).then((b) => {
        ctx.cache?.putBlock(ctx.chainId, b.block)
        return b
      })
    : loadBlock({ rpc, blockNumber: number, cache: ctx.cache, chainId: ctx.chainId })
  const block = load.then((b) => withRangeHeaders(rpc, ctx.cache, ctx.chainId, b, ctx.headers))
  ctx.headers.add(
    number,
    block.then((b) => ({ number, hash: b.hash.toLowerCase() as Hash, stateRoot: String(b.block.stateRoot).toLowerCase() as Hash })),
  )
  const all = (async (): Promise<Fetched> => {
    const loaded = await block
    const prepared = prepareBlock(loaded.block, { chain: ctx.chain })
    // Marked handled: a block that fails to prepare reports it when awaited below.
    prepared.catch(() => {})
    const known = new KnownState()
    let session: Session | undefined
    let adapterSource: StateSource | undefined
    if (ctx.source.kind === 'adapter') {
      adapterSource = await ctx.source.adapter.load({ block: loaded.block })
    } else if (ctx.source.kind === 'witness') {
      // The range's witness adapter, with this block's calls counted on its own client.
      adapterSource = await new RpcStateAdapter({ rpc, source: 'witness', chainId: ctx.chainId }).load({ block: loaded.block })
    } else {
      if (number === 0n) throw new InvalidInputError('the genesis block has no parent state to read')
      const adapter = ctx.source.adapter
      const parent = loaded.block.parentHash.toLowerCase() as Hash
      // The adapter's own rpc is the range's; this block's calls go through its counter.
      session = new Session(adapter, loaded, ctx.chainId, parent, number - 1n, known, rpc, ctx.carriedCode)
      ctx.cache?.loadState(ctx.chainId, parent, known)
      if (adapter.source === 'prestate') {
        await session.seedFromTrace()
        for (const a of PRE_BLOCK_SYSTEM_CONTRACTS) {
          const account = known.accounts.get(a)
          if (account) {
            account.storage.clear()
            account.storageComplete = false
          }
        }
      } else if (adapter.source === 'proofs') await session.seedAccounts(loaded.block, ctx.carries)
    }
    return { loaded, prepared: await prepared, rpc, known, session, adapterSource, fetchMs: performance.now() - started }
  })()
  return { block, all }
}
