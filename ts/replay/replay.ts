// replayBlocks: a range of blocks from a node, executed in order with the state carried from
// block to block. The next `prefetch` blocks and their up-front state are fetched while the
// current one executes; the carried state (held natively, bounded by a byte budget) means only
// keys no earlier block read are fetched. Results are yielded strictly in block order, and a
// consumer that stops pulling stops the fetching too (backpressure).
import type { Address, Hash, Hex } from 'viem'
import type { ChainConfig, RpcBlock } from '../block.js'
import { budget, checkOptions, executeNativeRun, type ExecutionMode } from '../execute.js'
import { fromNative, InvalidInputError, MissingBlockHashError, ParallelEvmError, ReorgError, ReplayError, StateError, StateMismatchError } from '../errors.js'
import { native, type NativeExecutionOutput } from '../native.js'
import type { StateCache } from '../rpc/cache.js'
import { rpcOf } from '../rpc/block.js'
import type { Rpc, RpcOptions, RpcSource } from '../rpc/client.js'
import type { KnownState } from '../rpc/known.js'
import { RpcStateAdapter } from '../rpc/state.js'
import { toExecutionResult, type ExecutionResult } from '../result.js'
import { isStateAdapter, type MissingKeys, type StateAdapter, type StateLoadStats, type StateRound } from '../state.js'
import { fetchBlock, RangeHeaders, type Fetched, type Fetching } from './fetch.js'

/** Blocks fetched ahead of the one executing (measured: see the README's replay figures). */
export const DEFAULT_PREFETCH = 8
/** Default byte budget of the carried state. */
export const DEFAULT_CARRY_BUDGET = 256 * 1024 * 1024

export type ReplayStateSource = 'prestate' | 'proofs' | 'witness'

export type ReplayBlocksParameters = (RpcSource | { rpc: Rpc }) & {
  /** First block of the range (inclusive). */
  from: bigint | number
  /** Last block of the range (inclusive). */
  to: bigint | number
  /**
   * Where pre-state comes from: `prestate` (default; `debug_traceBlockByNumber` with the
   * prestateTracer, anything it leaves out by proofs), `proofs` (`eth_getProof`, for nodes without
   * the debug namespace), or a custom `StateAdapter` (loaded per block, no carried state).
   */
  state?: ReplayStateSource | StateAdapter
  /** SQLite cache of blocks and state (see `StateCache`). */
  cache?: StateCache
  /** Fork rules (default: Ethereum mainnet). */
  chain?: ChainConfig
  /** The chain id (saves an `eth_chainId` call). */
  chainId?: number
  /** Engine worker threads (default: all cores). */
  threads?: number
  mode?: ExecutionMode
  /** Blocks fetched ahead of the one executing (default 8; 0: fetch each block at its turn). */
  prefetch?: number
  /** Carry each block's post-state to the next (default true; false fetches every block's whole pre-state). */
  carryState?: boolean
  /** Most bytes the carried state holds; least recently used keys leave first (default 256 MiB). */
  carryBudgetBytes?: number
  /** The hash `from`'s parent must have (resuming after a block already processed). */
  parentHash?: Hash
  /** Executions per block before giving up on missing keys (default 16). */
  maxRounds?: number
  /** Retries, timeout and batching of a client built from `rpcUrl`. */
  rpcOptions?: RpcOptions
  /** Requests in flight at once per block (default 16). */
  concurrency?: number
  /** Stops the range: the iterator rejects with the signal's reason. */
  signal?: AbortSignal
}

/** How a block of the range was fetched and run. */
export type ReplayTimings = {
  /** From the start of its fetch until block and up-front state were in hand, ms. */
  fetchMs: number
  /** How long execution waited for that fetch, ms (0 when prefetching kept ahead). */
  waitMs: number
  /** Merging, executing, and fetching what the runs missed, ms. */
  executeMs: number
}

export type ReplayBlockStats = {
  /** JSON-RPC calls made for this block (its fetch and its rounds). */
  rpcCalls: number
  /** Cache reads answered since the block before was yielded. */
  cacheHits: number
  /** Keys (accounts and slots) the block read from the carried state. */
  carriedKeys: number
  /** Keys fetched for the block that the carried state did not hold. */
  fetchedKeys: number
  /** Executions of the block (1 + rounds that missed keys). */
  rounds: number
  /** Size of the carried state after the block. */
  carried: { accounts: number; slots: number; bytes: number; evictedAccounts: number; evictedSlots: number }
}

/** One block of a range: the same result as `executeBlock`, plus the block and how it was replayed. */
export type ReplayedBlock = ExecutionResult & {
  hash: Hash
  parentHash: Hash
  /** The block as the node returned it (full transactions). */
  block: RpcBlock
  timings: ReplayTimings
  replay: ReplayBlockStats
}

export type ReplayBlocksReturnType = AsyncIterable<ReplayedBlock>

type NativeCarried = InstanceType<ReturnType<typeof native>['CarriedState']>
type CarriedStats = { accounts: number; slots: number; bytes: number; carriedKeys: number; fetchedKeys: number; evictedAccounts: number; evictedSlots: number }

function integer(name: string, value: unknown, min: number): number {
  if (!Number.isSafeInteger(value) || (value as number) < min) throw new InvalidInputError(`${name} must be an integer >= ${min}, got ${String(value)}`)
  return value as number
}

function blockNumber(name: string, value: unknown): bigint {
  if (typeof value === 'bigint' && value >= 0n) return value
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value)
  throw new InvalidInputError(`${name} must be a non-negative block number, got ${String(value)}`)
}

/** Rejects as soon as `signal` aborts, whatever `p` does. */
function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p
  signal.throwIfAborted()
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(e)
      },
    )
  })
}

function missingError(missing: MissingKeys, maxRounds: number): ParallelEvmError {
  const slots = Object.values(missing.storage).reduce((n, s) => n + s.length, 0)
  const why = `still missing keys after ${maxRounds} rounds`
  if (missing.accounts.length === 0 && slots === 0) return new MissingBlockHashError(`${why}: block hashes ${missing.blockHashes.join(', ')}`)
  return new StateError(`${why}: ${missing.accounts.length} accounts, ${slots} slots (first: ${missing.accounts[0] ?? Object.keys(missing.storage)[0]})`)
}

/** Merges what was fetched for `number` into the carried state; a differing value is an error. */
async function merge(carried: NativeCarried, known: KnownState, number: bigint): Promise<void> {
  if (known.size === 0 && known.blockHashes.size === 0) return
  const { prestate, blockHashes, knowledge } = known.toJson()
  known.clear()
  let answer: { new?: number; mismatch?: { address: string; field: string; key?: string; carried: string; fetched: string } }
  try {
    answer = JSON.parse(await carried.merge(prestate, blockHashes, knowledge))
  } catch (e) {
    throw fromNative(e)
  }
  if (answer.mismatch) throw new StateMismatchError(number, answer.mismatch)
}

/**
 * Replays blocks `from`..`to` from a node, in order: each block's result (receipts, logs, state
 * diff, header checks) as `executeBlock` gives it, plus its timings and how its state was
 * fetched. The post-state of each block is carried to the next, so only keys never read before
 * are fetched; the next `prefetch` blocks are fetched while one executes.
 *
 * A block that fails stops the range with a `ReplayError` (its number, and the typed error as
 * `cause`); a reorg under the range is a `ReorgError` (or a `StateMismatchError` when seen in
 * the state first). Everything yielded before stays valid.
 *
 * @example
 * for await (const b of replayBlocks({ rpcUrl, from: 19_000_000n, to: 19_000_100n, state: 'proofs' })) {
 *   console.log(b.number, b.receipts.length, b.verification)
 * }
 */
export function replayBlocks(params: ReplayBlocksParameters): ReplayBlocksReturnType {
  if (params === null || typeof params !== 'object') throw new InvalidInputError('replayBlocks takes one options object')
  const from = blockNumber('from', params.from)
  const to = blockNumber('to', params.to)
  if (to < from) throw new InvalidInputError(`empty range: to (${to}) is before from (${from})`)
  const prefetch = integer('prefetch', params.prefetch ?? DEFAULT_PREFETCH, 0)
  const maxRounds = integer('maxRounds', params.maxRounds ?? 16, 1)
  const carryBudget = integer('carryBudgetBytes', params.carryBudgetBytes ?? DEFAULT_CARRY_BUDGET, 0)
  const { threads, mode } = checkOptions(params.threads, params.mode)
  const state = params.state ?? 'prestate'
  if (state === 'witness') throw new InvalidInputError("state 'witness' is not available yet: use 'prestate' or 'proofs'")
  if (!isStateAdapter(state) && state !== 'prestate' && state !== 'proofs') {
    throw new InvalidInputError(`state must be 'prestate', 'proofs' or a StateAdapter, got ${String(state)}`)
  }
  if (params.parentHash !== undefined && !/^0x[0-9a-fA-F]{64}$/.test(params.parentHash)) throw new InvalidInputError(`parentHash must be a 32-byte hash, got ${String(params.parentHash)}`)
  const rpc = rpcOf(params, params.rpcOptions)
  const carry = params.carryState ?? true
  const signal = params.signal
  return {
    [Symbol.asyncIterator]: () => run(),
  }

  async function* run(): AsyncGenerator<ReplayedBlock, void, undefined> {
    signal?.throwIfAborted()
    const chainId = params.chainId ?? (await abortable(rpc.chainId(), signal))
    const adapter = isStateAdapter(state) ? undefined : new RpcStateAdapter({ rpc, source: state as 'prestate' | 'proofs', cache: params.cache, chainId, maxRounds, concurrency: params.concurrency })
    const newCarried = (): NativeCarried => new (native().CarriedState)(carryBudget)
    let carried = newCarried()
    const ctx = {
      rpc,
      cache: params.cache,
      chainId,
      chain: params.chain,
      source: adapter ? ({ kind: 'rpc', adapter } as const) : ({ kind: 'adapter', adapter: state as StateAdapter } as const),
      headers: new RangeHeaders(),
      // Without carrying, every block fetches its own (the state is new for each block).
      carries: (a: Address) => carry && carried.hasAccounts([a])[0] === true,
      carriedCode: (a: Address): Hex | undefined => {
        const code = carry ? carried.codeOf(a) : null
        return code ? (`0x${code.toString('hex')}` as Hex) : undefined
      },
    }
    const inFlight = new Map<bigint, Fetching>()
    let next = from
    let previousHash = params.parentHash?.toLowerCase() as Hash | undefined
    let hitsBefore = params.cache?.hits ?? 0
    const cost = mode === 'sequential' ? 1 : threads

    for (let n = from; n <= to; n++) {
      signal?.throwIfAborted()
      // Keep `prefetch` blocks beyond this one in flight; nothing more while the consumer is away.
      while (next <= to && next <= n + BigInt(prefetch)) {
        const f = fetchBlock(ctx, next)
        // Failures surface when their block's turn comes, not as unhandled rejections.
        f.all.catch(() => {})
        inFlight.set(next, f)
        next++
      }
      const fetching = inFlight.get(n)!
      inFlight.delete(n)
      try {
        const waitStarted = performance.now()
        const loaded = await abortable(fetching.block, signal)
        const parentHash = loaded.block.parentHash.toLowerCase() as Hash
        if (previousHash !== undefined && parentHash !== previousHash) throw new ReorgError(n, previousHash, parentHash)
        const fetched = await abortable(fetching.all, signal)
        const waitMs = performance.now() - waitStarted
        const started = performance.now()
        const { output, rounds } = adapter ? await executeCarried(fetched) : await executeAdapter(fetched)
        const executeMs = performance.now() - started
        const stats = JSON.parse(carried.statsJson()) as CarriedStats
        if (!carry) carried = newCarried()
        const hits = params.cache?.hits ?? 0
        const stateStats: StateLoadStats = { kind: adapter?.kind ?? (state as StateAdapter).kind, rounds, rpcCalls: fetched.rpc.calls, cacheHits: hits - hitsBefore, loadMs: fetched.fetchMs }
        hitsBefore = hits
        const result = toExecutionResult(output, stateStats)
        const replayed = Object.assign(result, {
          hash: loaded.hash.toLowerCase() as Hash,
          parentHash,
          block: loaded.block,
          timings: { fetchMs: fetched.fetchMs, waitMs, executeMs },
          replay: {
            rpcCalls: fetched.rpc.calls,
            cacheHits: stateStats.cacheHits,
            carriedKeys: adapter ? stats.carriedKeys : 0,
            fetchedKeys: adapter ? stats.fetchedKeys : 0,
            rounds: rounds.length,
            carried: { accounts: stats.accounts, slots: stats.slots, bytes: stats.bytes, evictedAccounts: stats.evictedAccounts, evictedSlots: stats.evictedSlots },
          },
        }) as ReplayedBlock
        previousHash = replayed.hash
        yield replayed
      } catch (e) {
        if (signal?.aborted && e === signal.reason) throw e
        if (e instanceof ReorgError || e instanceof StateMismatchError || e instanceof ReplayError) throw e
        throw new ReplayError(n, e instanceof ParallelEvmError ? e : fromNative(e))
      }
    }

    /** Rounds on the carried state: run, fetch what the run missed, merge, run again. */
    async function executeCarried(fetched: Fetched): Promise<{ output: NativeExecutionOutput; rounds: StateRound[] }> {
      const number = fetched.loaded.number
      await merge(carried, fetched.known, number)
      const rounds: StateRound[] = []
      for (;;) {
        const output = await abortable(
          budget.run(cost, async () => {
            try {
              return await native().executeCarried(fetched.prepared, carried, threads, mode)
            } catch (e) {
              throw fromNative(e)
            }
          }),
          signal,
        )
        if (!output.missingJson) {
          rounds.push({ missingAccounts: 0, missingSlots: 0, missingBlockHashes: 0, fetchMs: 0 })
          return { output, rounds }
        }
        const missing = JSON.parse(output.missingJson) as MissingKeys
        if (rounds.length + 1 >= maxRounds) throw missingError(missing, maxRounds)
        const started = performance.now()
        await abortable(fetched.session!.fetch(missing), signal)
        await merge(carried, fetched.known, number)
        rounds.push({
          missingAccounts: missing.accounts.length,
          missingSlots: Object.values(missing.storage).reduce((k, s) => k + s.length, 0),
          missingBlockHashes: missing.blockHashes.length,
          fetchMs: performance.now() - started,
        })
      }
    }

    /** A custom adapter: its own rounds, no carried state. */
    async function executeAdapter(fetched: Fetched): Promise<{ output: NativeExecutionOutput; rounds: StateRound[] }> {
      const source = fetched.adapterSource!
      const run = await executeNativeRun({ block: fetched.prepared, state: { kind: (state as StateAdapter).kind, load: async () => source }, threads, mode })
      return { output: run.output, rounds: run.stateStats?.rounds ?? [{ missingAccounts: 0, missingSlots: 0, missingBlockHashes: 0, fetchMs: 0 }] }
    }
  }
}
