// executeBlock: resolves the block and state inputs to prepared engine handles, then runs the
// engine off the JS thread under a thread budget shared by all concurrent calls.
import { availableParallelism } from 'node:os'
import { isPreparedBlock, prepareBlock, toRpcBlock, type BlockLike, type ChainConfig, type PreparedBlock, type RpcBlock } from './block.js'
import { InvalidInputError, MissingBlockHashError, StateError, fromNative } from './errors.js'
import { ThreadBudget } from './limiter.js'
import { native, type NativeExecutionOutput } from './native.js'
import { toExecutionResult, type ExecutionResult } from './result.js'
import { traceConfigJson, type TraceConfig } from './trace.js'
import {
  isPartialSource,
  isPreparedState,
  isStateAdapter,
  prepareState,
  type BlockHashes,
  type MissingKeys,
  type PartialStateSource,
  type PreparedState,
  type StateLike,
  type StateLoadStats,
  type StateRound,
} from './state.js'

export type ExecutionMode = 'auto' | 'sequential' | 'parallel'

export type ExecuteBlockParameters = {
  /** A JSON-RPC block, a viem `Block` with full transactions, raw block JSON bytes, or a prepared block. */
  block: BlockLike
  /** A prestate object (geth prestateTracer), raw prestate JSON bytes, a prepared state, or a state adapter. */
  state: StateLike
  /** Hashes for BLOCKHASH (the parent's comes from the block). Not with a prepared state: give them to `prepareState`. */
  blockHashes?: BlockHashes | Uint8Array
  /** Fork rules (default: Ethereum mainnet). Not with a prepared block: give it to `prepareBlock`. */
  chain?: ChainConfig
  /** Check that every transaction's signature recovers to its `from` (see `prepareBlock`). Not with a prepared block. */
  verifySignatures?: boolean
  /** Check the block against its own header (see `prepareBlock`); `verifyBlock` reports the checks. Not with a prepared block. */
  checkHeader?: boolean
  /** Engine worker threads; default: all cores. */
  threads?: number
  /** `auto` (default) runs in parallel when it pays. */
  mode?: ExecutionMode
  /**
   * Also trace every transaction with this geth tracer (`callTracer`, `prestateTracer`,
   * `flatCallTracer`, `4byteTracer`): the result gets `traces`, what a geth/reth node returns for
   * `debug_traceBlockByNumber(n, trace)`. Traced on `threads` threads (one in sequential mode).
   */
  trace?: TraceConfig
}

const MODES: readonly ExecutionMode[] = ['auto', 'sequential', 'parallel']
/** The thread budget every engine call shares (internal). */
export const budget = new ThreadBudget(availableParallelism())

/** Checks `threads` and `mode` (internal). */
export function checkOptions(threads: unknown, mode: unknown): { threads: number; mode: ExecutionMode } {
  if (threads !== undefined && (!Number.isInteger(threads) || (threads as number) < 1 || (threads as number) > 1024)) {
    throw new InvalidInputError(`threads must be an integer from 1 to 1024, got ${String(threads)}`)
  }
  if (mode !== undefined && !MODES.includes(mode as ExecutionMode)) {
    throw new InvalidInputError(`mode must be one of ${MODES.join(', ')}, got ${String(mode)}`)
  }
  return { threads: (threads as number | undefined) ?? budget.capacity, mode: (mode as ExecutionMode | undefined) ?? 'auto' }
}

/** The prepared block of an executeBlock call (and its JSON-RPC form when given as an object). Internal. */
export async function resolveBlock(params: Pick<ExecuteBlockParameters, 'block' | 'chain' | 'verifySignatures' | 'checkHeader'>): Promise<{ prepared: PreparedBlock; rpc?: RpcBlock }> {
  const { block, chain, verifySignatures, checkHeader } = params
  if (isPreparedBlock(block)) {
    if (chain !== undefined) throw new InvalidInputError('chain cannot be combined with a prepared block: pass it to prepareBlock')
    if (verifySignatures !== undefined) throw new InvalidInputError('verifySignatures cannot be combined with a prepared block: pass it to prepareBlock')
    if (checkHeader !== undefined) throw new InvalidInputError('checkHeader cannot be combined with a prepared block: pass it to prepareBlock')
    return { prepared: block }
  }
  if (block instanceof Uint8Array) return { prepared: await prepareBlock(block, { chain, verifySignatures, checkHeader }) }
  const rpc = toRpcBlock(block)
  return { prepared: await prepareBlock(rpc, { chain, verifySignatures, checkHeader }), rpc }
}

/** The prepared state of an executeBlock call (loading adapters). Internal. */
export async function resolveState(params: Pick<ExecuteBlockParameters, 'state' | 'blockHashes'>, rpc: RpcBlock | undefined): Promise<PreparedState | PartialStateSource> {
  const { state, blockHashes } = params
  if (isPreparedState(state)) {
    if (blockHashes !== undefined) throw new InvalidInputError('blockHashes cannot be combined with a prepared state: pass them to prepareState')
    return state
  }
  if (isStateAdapter(state)) {
    const source = await state.load({ block: rpc })
    if (isPreparedState(source) || isPartialSource(source)) return source
    return prepareState(source.prestate, { blockHashes: source.blockHashes ?? blockHashes })
  }
  return prepareState(state, { blockHashes })
}

/** A native output with the state it ran on and, for adapters of partial states, how it was loaded. */
export type NativeRun = { output: NativeExecutionOutput; state: PreparedState; stateStats?: StateLoadStats }

function missingError(missing: MissingKeys, why: string): Error {
  const slots = Object.values(missing.storage).reduce((n, s) => n + s.length, 0)
  const summary = `${missing.accounts.length} accounts, ${slots} slots, ${missing.blockHashes.length} block hashes missing`
  if (missing.accounts.length === 0 && slots === 0 && missing.blockHashes.length > 0) {
    return new MissingBlockHashError(`${why}: block hashes ${missing.blockHashes.join(', ')}`)
  }
  return new StateError(`${why}: ${summary} (first: ${missing.accounts[0] ?? Object.keys(missing.storage)[0] ?? missing.blockHashes[0]})`)
}

/**
 * Runs the engine (in rounds for a partial state from an adapter) and returns the native output
 * of the complete run, the state it ran on, and how the state was loaded.
 */
export async function executeNativeRun(params: ExecuteBlockParameters): Promise<NativeRun> {
  if (params === null || typeof params !== 'object') throw new InvalidInputError('executeBlock takes one options object')
  const { threads, mode } = checkOptions(params.threads, params.mode)
  const trace = params.trace === undefined ? undefined : traceConfigJson(params.trace)
  // Adapters may need the block (e.g. its number), so the block is resolved first.
  const { prepared, rpc } = await resolveBlock(params)
  const source = await resolveState(params, rpc)
  const cost = mode === 'sequential' ? 1 : threads
  const run = (state: PreparedState) =>
    budget.run(cost, async () => {
      try {
        return await native().execute(prepared, state, threads, mode, trace)
      } catch (e) {
        throw fromNative(e)
      }
    })
  if (!isPartialSource(source)) {
    const output = await run(source)
    // A partial state given directly has no way to fetch what it lacks.
    if (output.missingJson) throw missingError(JSON.parse(output.missingJson) as MissingKeys, 'the partial state lacks keys the block reads')
    return { output, state: source }
  }
  // Run, fetch what the run missed, run again: a round that missed keys yields no result.
  const rounds: StateRound[] = []
  let state = source.partial
  for (;;) {
    const output = await run(state)
    if (!output.missingJson) {
      rounds.push({ missingAccounts: 0, missingSlots: 0, missingBlockHashes: 0, fetchMs: 0 })
      return { output, state, stateStats: { ...source.stats(), rounds } }
    }
    const missing = JSON.parse(output.missingJson) as MissingKeys
    if (rounds.length + 1 >= source.maxRounds) {
      throw missingError(missing, `still missing keys after ${source.maxRounds} rounds`)
    }
    const started = performance.now()
    state = await source.fetchMissing(missing)
    rounds.push({
      missingAccounts: missing.accounts.length,
      missingSlots: Object.values(missing.storage).reduce((n, s) => n + s.length, 0),
      missingBlockHashes: missing.blockHashes.length,
      fetchMs: performance.now() - started,
    })
  }
}

/** Runs the engine and returns its native output (internal: the CLI compares outputs natively). */
export async function executeNative(params: ExecuteBlockParameters): Promise<NativeExecutionOutput> {
  return (await executeNativeRun(params)).output
}

/**
 * Executes a block on its pre-state with Block-STM (or sequentially when that is faster) and
 * returns receipts, logs, gas used, the post-state diff, statistics and the header checks.
 *
 * @example
 * const result = await executeBlock({ block, state: prestate, threads: 8 })
 * result.gasUsed // bigint
 */
export async function executeBlock(params: ExecuteBlockParameters): Promise<ExecutionResult> {
  const { output, stateStats } = await executeNativeRun(params)
  return toExecutionResult(output, stateStats)
}

/** Debug hook: a panic inside the engine's worker path; rejects with an InternalError. */
export async function __debugPanic(): Promise<void> {
  try {
    await native().__debugPanic()
  } catch (e) {
    throw fromNative(e)
  }
}
