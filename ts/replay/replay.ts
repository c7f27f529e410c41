// replayBlocks: a range of blocks from a node, executed in order with the state carried from
// block to block. The next `prefetch` blocks and their up-front state are fetched while the
// current one executes; the carried state (held natively, bounded by a byte budget) means only
// keys no earlier block read are fetched. Results are yielded strictly in block order, and a
// consumer that stops pulling stops the fetching too (backpressure).
import type { Address, Hash, Hex } from 'viem'
import type { ChainConfig, RpcBlock } from '../block.js'
import { budget, checkOptions, executeNativeRun, type ExecutionMode } from '../execute.js'
import { fromNative, InvalidInputError, MissingBlockHashError, ParallelEvmError, ReorgError, ReplayError, RpcResponseError, StateError, StateMismatchError } from '../errors.js'
import { native, type NativeExecutionOutput } from '../native.js'
import type { StateCache } from '../rpc/cache.js'
import { rpcOf } from '../rpc/block.js'
import type { Rpc, RpcOptions, RpcSource } from '../rpc/client.js'
import type { KnownState } from '../rpc/known.js'
import { RpcStateAdapter } from '../rpc/state.js'
import { toExecutionResult, type ExecutionResult } from '../result.js'
import { isStateAdapter, type MissingKeys, type StateAdapter, type StateLoadStats, type StateRound } from '../state.js'
import { fetchBlock, RangeHeaders, type Fetched, type Fetching } from './fetch.js'
import { traceConfigJson, type TraceConfig } from '../trace.js'

/** Blocks fetched ahead of the one executing (measured: see the README's replay figures). */
export const DEFAULT_PREFETCH = 8
/** Refetches after a break in the fetched chain before it is left to fail as a reorg. */
const MAX_REFETCHES = 3
/** Default byte budget of the carried state. */
export const DEFAULT_CARRY_BUDGET = 256 * 1024 * 1024

export type ReplayStateSource = 'prestate' | 'proofs' | 'witness'
/** What a reorg under the range does: stop with a `ReorgError`, or fetch again what was not run yet. */
export type ReplayReorgPolicy = 'error' | 'refetch'

export type ReplayBlocksParameters = (RpcSource | { rpc: Rpc }) & {
  /** First block of the range (inclusive). */
  from: bigint | number
  /** Last block of the range (inclusive). */
  to: bigint | number
  /**
   * Where pre-state comes from: `prestate` (default; `debug_traceBlockByNumber` with the
   * prestateTracer, anything it leaves out by proofs), `proofs` (`eth_getProof`, for nodes without
   * the debug namespace), `witness` (`debug_executionWitness`, reth: one witness per block proves
   * its whole pre-state and the post-state root is checked; nothing is carried, as the witness
   * already holds every key the block reads), or a custom `StateAdapter` (loaded per block, no
   * carried state).
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
  /**
   * A reorg under the range: `error` (default) stops with a `ReorgError` naming both hashes when
   * a block does not follow the one before it. `refetch`: before blocks run, one header request
   * for the last of them checks that the node still has them (one call per engine call); if not,
   * or if a block does not follow the one before it, every block not yielded yet is fetched again
   * from the node (not the cache), up to 3 times in a row. Blocks already run cannot be taken back
   * (those yielded, and those run in the same engine call, confirmed together): a reorg that
   * replaced one of them is still a `ReorgError` naming both hashes.
   */
  onReorg?: ReplayReorgPolicy
  /** Also trace every transaction with this geth tracer (as `executeBlock`'s `trace`): each block gets `traces`. */
  trace?: TraceConfig
  /**
   * Most consecutive blocks run in one call into the engine, back to back on the carried state,
   * when their inputs are all fetched (default: as many as are ready, at most `prefetch + 1`;
   * 1: one call per block).
   */
  batchSize?: number
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
type InFlight = Fetching & { fetched: Fetched | undefined }
type Mismatch = { address: string; field: string; key?: string; carried: string; fetched: string }
/** `CarriedRunOutput.infoJson`. */
type RunInfo = {
  blocks: { executeMs: number; stats: CarriedStats }[]
  stop: null | { executeMs: number; missing?: true; mismatch?: Mismatch; error?: { code: string; message: string; txIndex?: number } }
}
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
  const batchSize = params.batchSize === undefined ? Number.POSITIVE_INFINITY : integer('batchSize', params.batchSize, 1)
  const { threads, mode } = checkOptions(params.threads, params.mode)
  const state = params.state ?? 'prestate'
  if (!isStateAdapter(state) && state !== 'prestate' && state !== 'proofs' && state !== 'witness') {
    throw new InvalidInputError(`state must be 'prestate', 'proofs', 'witness' or a StateAdapter, got ${String(state)}`)
  }
  const onReorg = params.onReorg ?? 'error'
  if (onReorg !== 'error' && onReorg !== 'refetch') throw new InvalidInputError(`onReorg must be 'error' or 'refetch', got ${String(onReorg)}`)
  const trace = params.trace === undefined ? undefined : traceConfigJson(params.trace)
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
    const rpcSource = state === 'prestate' || state === 'proofs' ? state : undefined
    const adapter = rpcSource ? new RpcStateAdapter({ rpc, source: rpcSource, cache: params.cache, chainId, maxRounds, concurrency: params.concurrency }) : undefined
    const newCarried = (): NativeCarried => new (native().CarriedState)(carryBudget)
    let carried = newCarried()
    const ctx = {
      rpc,
      cache: params.cache,
      chainId,
      chain: params.chain,
      source: adapter ? ({ kind: 'rpc', adapter } as const) : state === 'witness' ? ({ kind: 'witness' } as const) : ({ kind: 'adapter', adapter: state as StateAdapter } as const),
      headers: new RangeHeaders(),
      // Without carrying, every block fetches its own (the state is new for each block).
      carries: (a: Address) => carry && carried.hasAccounts([a])[0] === true,
      carriedCode: (a: Address): Hex | undefined => {
        const code = carry ? carried.codeOf(a) : null
        return code ? (`0x${code.toString('hex')}` as Hex) : undefined
      },
    }
    const stateKind = adapter?.kind ?? (state === 'witness' ? 'rpc-witness' : (state as StateAdapter).kind)
    const inFlight = new Map<bigint, InFlight>()
    let next = from
    let previousHash = params.parentHash?.toLowerCase() as Hash | undefined
    let hitsBefore = params.cache?.hits ?? 0
    const cost = mode === 'sequential' ? 1 : threads
    // Refetches since the last block was yielded (a chain that keeps reorging ends in an error).
    let refetches = 0
    // A block a back-to-back run stopped at because it missed keys: its rounds go on from there.
    let resumed: { number: bigint; output: NativeExecutionOutput; executeMs: number } | undefined

    // Blocks go to the node 2 ms apart, after the client's batch of the block before has left (it
    // waits one timer tick). Sent together (the window sliding past a back-to-back run's blocks),
    // their requests went out as one JSON-RPC batch, which the node answers whole: back-to-back
    // runs made 0.74x the blocks/s of one block per call from anvil. Cached blocks do not wait.
    let turns: Promise<void> = Promise.resolve()
    const nextTurn = () => {
      turns = turns.then(() => new Promise<void>((resolve) => setTimeout(resolve, 2)))
      return turns
    }
    const start = (number: bigint, fresh: boolean) => {
      const f: InFlight = Object.assign(fetchBlock(ctx, number, fresh, nextTurn), { fetched: undefined })
      // Failures surface when their block's turn comes, not as unhandled rejections.
      f.block.catch(() => {})
      f.all.then((x) => (f.fetched = x)).catch(() => {})
      inFlight.set(number, f)
    }
    /** Keeps `prefetch` blocks beyond `n` in flight; nothing more while the consumer is away. */
    const topUp = (n: bigint) => {
      for (; next <= to && next <= n + BigInt(prefetch); next++) start(next, false)
    }
    /** Drops every fetch from `n` on and starts again from `n`, bypassing the cache (a reorg). */
    const refetchFrom = (n: bigint) => {
      for (const k of [...inFlight.keys()]) if (k >= n) inFlight.delete(k)
      // Keys already merged for a block at `n` stay valid: they are the state after `n - 1`.
      resumed = undefined
      refetches++
      for (next = n; next <= to && next <= n + BigInt(prefetch); next++) start(next, true)
    }
    /**
     * Whether the node still has `batch` (consecutive blocks, each following the one before): one
     * header request for its last block, whose hash chains to all the others.
     */
    const confirmed = async (batch: Fetched[]): Promise<boolean> => {
      const last = batch.at(-1)!
      const header = await abortable(last.rpc.request<{ hash?: string } | null>('eth_getBlockByNumber', [`0x${last.loaded.number.toString(16)}`, false]), signal)
      return header?.hash?.toLowerCase() === last.loaded.hash.toLowerCase()
    }

    let n = from
    while (n <= to) {
      signal?.throwIfAborted()
      topUp(n)
      const head = inFlight.get(n)!
      const done: ReplayedBlock[] = []
      let failure: { number: bigint; error: unknown } | undefined
      try {
        const waitStarted = performance.now()
        const loaded = await abortable(head.block, signal)
        const parentHash = loaded.block.parentHash.toLowerCase() as Hash
        if (previousHash !== undefined && parentHash !== previousHash) {
          // The head may have been fetched before the reorg (its parent, after): once more, fresh.
          if (onReorg === 'refetch' && refetches === 0) {
            refetchFrom(n)
            continue
          }
          throw new ReorgError(n, previousHash, parentHash)
        }
        const fetched = await abortable(head.all, signal)
        const waitMs = performance.now() - waitStarted
        const batch = adapter && carry && resumed?.number !== n ? readyFrom(fetched) : [fetched]
        // Blocks fetched before a reorg look fine among themselves: before they run, the node is
        // asked whether it still has them. If not, every block not yielded yet is fetched again.
        if (onReorg === 'refetch' && !(await confirmed(batch))) {
          if (refetches >= MAX_REFETCHES) {
            const k = batch.at(-1)!.loaded.number
            throw new RpcResponseError('eth_getBlockByNumber', `block ${k} changed ${MAX_REFETCHES} times while the range was fetched (the node keeps reorging)`)
          }
          refetchFrom(n)
          continue
        }
        if (adapter && carry) {
          failure = await runBackToBack(batch, waitMs, done)
        } else {
          const started = performance.now()
          const { output, rounds } = adapter ? await executeCarried(fetched) : await executeAdapter(fetched)
          const executeMs = performance.now() - started
          const stats = JSON.parse(carried.statsJson()) as CarriedStats
          if (!carry) carried = newCarried()
          done.push(replayed(fetched, output, rounds, { fetchMs: fetched.fetchMs, waitMs, executeMs }, stats))
        }
      } catch (e) {
        failure = { number: n, error: e }
      }
      for (const b of done) {
        inFlight.delete(b.number)
        previousHash = b.hash
        refetches = 0
        n++
        yield b
        signal?.throwIfAborted()
        // The window slides by one block per block yielded, as when blocks run one at a time.
        if (n <= to) topUp(n)
      }
      if (failure) {
        const e = failure.error
        if (signal?.aborted && e === signal.reason) throw e
        if (e instanceof ReorgError || e instanceof StateMismatchError || e instanceof ReplayError) throw e
        throw new ReplayError(failure.number, e instanceof ParallelEvmError ? e : fromNative(e))
      }
    }

    /** `head` and the blocks after it whose inputs are all fetched, each following the one before. */
    function readyFrom(head: Fetched): Fetched[] {
      const batch = [head]
      let hash = head.loaded.hash.toLowerCase()
      for (let k = head.loaded.number + 1n; batch.length < batchSize; k++) {
        const ready = inFlight.get(k)?.fetched
        if (!ready || ready.loaded.block.parentHash.toLowerCase() !== hash) break
        batch.push(ready)
        hash = ready.loaded.hash.toLowerCase()
      }
      return batch
    }

    /** The result of a block, as yielded. */
    function replayed(fetched: Fetched, output: NativeExecutionOutput, rounds: StateRound[], timings: ReplayTimings, stats: CarriedStats): ReplayedBlock {
      const hits = params.cache?.hits ?? 0
      const stateStats: StateLoadStats = { kind: stateKind, rounds, rpcCalls: fetched.rpc.calls, cacheHits: hits - hitsBefore, loadMs: fetched.fetchMs }
      hitsBefore = hits
      const result = toExecutionResult(output, stateStats)
      return Object.assign(result, {
        hash: fetched.loaded.hash.toLowerCase() as Hash,
        parentHash: fetched.loaded.block.parentHash.toLowerCase() as Hash,
        block: fetched.loaded.block,
        timings,
        replay: {
          rpcCalls: fetched.rpc.calls,
          cacheHits: stateStats.cacheHits,
          carriedKeys: adapter ? stats.carriedKeys : 0,
          fetchedKeys: adapter ? stats.fetchedKeys : 0,
          rounds: rounds.length,
          carried: { accounts: stats.accounts, slots: stats.slots, bytes: stats.bytes, evictedAccounts: stats.evictedAccounts, evictedSlots: stats.evictedSlots },
        },
      }) as ReplayedBlock
    }

    /**
     * Runs the head block and the blocks after it whose inputs are all fetched (each following the
     * one before) in one call into the engine, back to back on the carried state. Their results
     * go to `done`, in order; a block the run stopped at is reported (a mismatch, an error) or,
     * when it missed keys, finished here by rounds as a single block would be.
     */
    async function runBackToBack(batch: Fetched[], waitMs: number, done: ReplayedBlock[]): Promise<{ number: bigint; error: unknown } | undefined> {
      const head = batch[0]!
      if (resumed?.number === head.loaded.number) {
        // The run before stopped at this block: its first round is that run's.
        const first = resumed
        resumed = undefined
        const started = performance.now()
        const { output, rounds } = await executeCarried(head, first.output)
        const executeMs = first.executeMs + performance.now() - started
        done.push(replayed(head, output, rounds, { fetchMs: head.fetchMs, waitMs, executeMs }, JSON.parse(carried.statsJson()) as CarriedStats))
        return undefined
      }
      const blocks = new (native().CarriedBlocks)()
      for (const f of batch) {
        if (f.known.size === 0 && f.known.blockHashes.size === 0) blocks.add(f.prepared)
        else {
          const { prestate, blockHashes, knowledge } = f.known.toJson()
          blocks.add(f.prepared, prestate, blockHashes, knowledge)
        }
      }
      const out = await abortable(
        budget.run(cost, async () => {
          try {
            return await native().executeCarriedRun(blocks, carried, threads, mode, trace)
          } catch (e) {
            throw fromNative(e)
          }
        }),
        signal,
      )
      const info = JSON.parse(out.infoJson) as RunInfo
      // The blocks that ran merged their keys (a block that missed keys too); the ones after the
      // block the run stopped at keep theirs for their own turn.
      for (const f of batch.slice(0, info.blocks.length + (info.stop?.missing ? 1 : 0))) f.known.clear()
      const complete = [{ missingAccounts: 0, missingSlots: 0, missingBlockHashes: 0, fetchMs: 0 }]
      info.blocks.forEach((b, i) => {
        const f = batch[i]!
        // Only the head waited: the others' inputs were in hand when the run started.
        done.push(replayed(f, out.take(i), complete, { fetchMs: f.fetchMs, waitMs: i === 0 ? waitMs : 0, executeMs: b.executeMs }, b.stats))
      })
      const stop = info.stop
      if (!stop) return undefined
      const at = batch[info.blocks.length]!
      const number = at.loaded.number
      if (stop.missing) {
        resumed = { number, output: out.take(info.blocks.length), executeMs: stop.executeMs }
        return undefined
      }
      if (stop.mismatch) return { number, error: new StateMismatchError(number, stop.mismatch) }
      return { number, error: fromNative(Object.assign(new Error(stop.error!.message), stop.error)) }
    }

    /**
     * Rounds on the carried state: run, fetch what the run missed, merge, run again. `first` is a
     * first run already made (by a back-to-back run) that missed keys.
     */
    async function executeCarried(fetched: Fetched, first?: NativeExecutionOutput): Promise<{ output: NativeExecutionOutput; rounds: StateRound[] }> {
      const number = fetched.loaded.number
      await merge(carried, fetched.known, number)
      const rounds: StateRound[] = []
      let previous = first
      for (;;) {
        const output =
          previous ??
          (await abortable(
            budget.run(cost, async () => {
              try {
                return await native().executeCarried(fetched.prepared, carried, threads, mode, trace)
              } catch (e) {
                throw fromNative(e)
              }
            }),
            signal,
          ))
        previous = undefined
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

    /** A custom adapter or a witness per block: its own rounds, no carried state. */
    async function executeAdapter(fetched: Fetched): Promise<{ output: NativeExecutionOutput; rounds: StateRound[] }> {
      const source = fetched.adapterSource!
      const run = await executeNativeRun({ block: fetched.prepared, state: { kind: stateKind, load: async () => source }, threads, mode, trace: params.trace })
      return { output: run.output, rounds: run.stateStats?.rounds ?? [{ missingAccounts: 0, missingSlots: 0, missingBlockHashes: 0, fetchMs: 0 }] }
    }
  }
}
