// verifyBlock: a structured report of a result checked against its block header (the engine
// computes the roots), optional expected receipts, and a sequential-vs-parallel cross-check.
import type { Hash, Hex } from 'viem'
import { isPreparedBlock, prepareBlock, type BlockLike, type ChainConfig, type PreparedBlock } from './block.js'
import { InvalidInputError, fromNative } from './errors.js'
import { executeNative, executeNativeRun, resolveBlock, resolveState } from './execute.js'
import { native, type NativeExecutionOutput } from './native.js'
import { nativeOutputOf, type ExecutionResult } from './result.js'
import { isPreparedState, isStateAdapter, prepareState, type BlockHashes, type Prestate, type PreparedState, type StateLike } from './state.js'

export type CheckName =
  | 'gasUsed'
  | 'receiptsRoot'
  | 'logsBloom'
  | 'requestsHash'
  | 'stateRoot'
  | 'transactionsRoot'
  | 'withdrawalsRoot'
  | 'blockHash'
  | 'signatures'
  | 'cumulativeGasUsed'
  | 'crossCheck'

export type CheckStatus = 'passed' | 'failed' | 'not-applicable'

/** One check. `expected` is the header's (or the reference run's) value, `actual` the result's. */
export type Check = {
  name: CheckName
  status: CheckStatus
  expected?: string
  actual?: string
  /** Why the check does not apply, or what the failure means. */
  note?: string
  /** The first transaction at fault (cumulative gas, cross-check). */
  txIndex?: number
  /** Where a cross-check found the first difference, e.g. `receipts[3].logs[0].data`. */
  location?: string
}

export type VerificationReport = {
  number: bigint
  hash: Hash | null
  /** No check failed. */
  passed: boolean
  checks: Check[]
}

/** The fields of an expected receipt (e.g. from `eth_getBlockReceipts`) that are compared. */
export type ExpectedReceipt = { cumulativeGasUsed: Hex | bigint | number }

export type VerifyBlockParameters = {
  /** The block the result was executed from. */
  block: BlockLike
  /** What `executeBlock` returned for that block. */
  result: ExecutionResult
  /** The pre-state the block ran on; needed for `fullState` and `crossCheck`. */
  state?: StateLike
  /** As given to executeBlock (re-execution in a cross-check needs them). */
  blockHashes?: BlockHashes | Uint8Array
  chain?: ChainConfig
  /**
   * `state` holds the whole chain state before the block (an anvil dump, a genesis), not just
   * the accounts the block touched: the post-state root is then computed and checked.
   */
  fullState?: boolean
  /** Receipts from the chain (e.g. `eth_getBlockReceipts`): per-transaction cumulative gas is checked. */
  expectedReceipts?: readonly ExpectedReceipt[]
  /** Also run the block sequentially and in parallel and compare the two field by field. */
  crossCheck?: boolean
  /** Threads of the parallel run of a cross-check (default: the result's, at least 2). */
  threads?: number
  /**
   * Check the block against its own header (default true): transactions root, withdrawals root,
   * block hash and signatures. Already done when the block was prepared with `checkHeader`; a
   * prepared block without it is not checked again.
   */
  checkHeader?: boolean
}

type NativeCheck = { name: CheckName; status: CheckStatus; expected?: string; actual?: string; note?: string; txIndex?: number }
type NativeMismatch = { txIndex: number | null; location: string; expected: string; actual: string }

function cumulativeGasCheck(result: ExecutionResult, expected: readonly ExpectedReceipt[] | undefined): Check {
  const name = 'cumulativeGasUsed'
  if (expected === undefined) return { name, status: 'not-applicable', note: 'no expected receipts given' }
  if (!Array.isArray(expected)) throw new InvalidInputError('expectedReceipts must be an array of receipts')
  const actual = result.receipts
  if (expected.length !== actual.length) {
    return { name, status: 'failed', expected: `${expected.length} receipts`, actual: `${actual.length} receipts` }
  }
  for (let i = 0; i < actual.length; i++) {
    const raw = expected[i]?.cumulativeGasUsed
    if (raw === undefined) throw new InvalidInputError(`expectedReceipts[${i}] has no cumulativeGasUsed`)
    let want: bigint
    try {
      want = BigInt(raw)
    } catch (e) {
      throw new InvalidInputError(`expectedReceipts[${i}].cumulativeGasUsed is not a quantity: ${String(raw)}`, { cause: e })
    }
    const got = actual[i]!.cumulativeGasUsed
    if (want !== got) return { name, status: 'failed', txIndex: i, expected: want.toString(), actual: got.toString() }
  }
  return { name, status: 'passed', expected: `${expected.length} receipts`, actual: `${actual.length} receipts` }
}

async function crossCheck(params: VerifyBlockParameters, output: NativeExecutionOutput, result: ExecutionResult, preparedState: () => Promise<PreparedState>): Promise<Check> {
  const name = 'crossCheck'
  const { prepared } = await resolveBlock(params)
  const state = await preparedState()
  const threads = Math.max(2, params.threads ?? result.stats.threads)
  const sequential = result.stats.mode === 'sequential' ? output : await executeNative({ block: prepared, state, mode: 'sequential' })
  const parallel = result.stats.mode === 'parallel' ? output : await executeNative({ block: prepared, state, mode: 'parallel', threads })
  const stats = JSON.parse(parallel.summary) as { stats: ExecutionResult['stats'] }
  if (stats.stats.mode !== 'parallel') {
    return { name, status: 'not-applicable', note: `the parallel engine did not run this block (${stats.stats.reason ?? 'sequential'})` }
  }
  const raw = sequential.firstMismatchJson(parallel)
  if (raw === null) return { name, status: 'passed', note: `sequential and parallel (${stats.stats.threads} threads) results are identical` }
  const m = JSON.parse(raw) as NativeMismatch
  return {
    name,
    status: 'failed',
    expected: m.expected,
    actual: m.actual,
    location: m.location,
    ...(m.txIndex === null ? {} : { txIndex: m.txIndex }),
    note: `sequential (expected) and parallel (actual) differ first at ${m.location}${m.txIndex === null ? '' : ` (transaction ${m.txIndex})`}`,
  }
}

/** The pre-state as one prepared state; an adapter of a partial state (RPC proofs) is loaded in
 * rounds until the block runs without missing keys. */
async function wholeState(params: VerifyBlockParameters): Promise<PreparedState> {
  if (isStateAdapter(params.state)) {
    const { prepared } = await resolveBlock(params)
    return (await executeNativeRun({ block: prepared, state: params.state, blockHashes: params.blockHashes, mode: 'sequential' })).state
  }
  const state = await resolveState({ state: params.state!, blockHashes: params.blockHashes }, undefined)
  if (!isPreparedState(state)) throw new InvalidInputError('verifyBlock needs a pre-state, a prepared state or a state adapter')
  return state
}

/** The block checked against its own header (transactions and withdrawals roots, hash, signatures). */
async function integrityChecks(block: Exclude<BlockLike, PreparedBlock>, chain: ChainConfig | undefined): Promise<NativeCheck[]> {
  const prepared = await prepareBlock(block, { chain, checkHeader: true })
  const json = prepared.integrityJson()
  return json === null ? [] : (JSON.parse(json) as NativeCheck[])
}

function blockNumberOf(block: BlockLike): bigint | undefined {
  if (block instanceof Uint8Array) return undefined
  if (isPreparedBlock(block)) return BigInt(block.number)
  const n = (block as { number?: unknown }).number
  return typeof n === 'bigint' || typeof n === 'string' || typeof n === 'number' ? BigInt(n) : undefined
}

/**
 * The Merkle-Patricia state root of a whole state (every account of the chain, e.g. an
 * `anvil_dumpState` or a genesis alloc), computed by the engine with alloy-trie. Zero-valued
 * slots are not part of the trie.
 */
export async function stateRoot(state: Prestate | Uint8Array | PreparedState): Promise<Hash> {
  const prepared = isPreparedState(state) ? state : await prepareState(state)
  try {
    return (await native().stateRoot(prepared)) as Hash
  } catch (e) {
    throw fromNative(e)
  }
}

/**
 * Checks an execution result: gas used, receipts root (Byzantium and later), logs bloom, the
 * block against its own header (transactions and withdrawals roots, block hash, signatures), the
 * post-state root when the block ran on an execution witness (`witnessState`), and — when asked —
 * the post-state root of a whole state (`fullState`), per-transaction cumulative gas
 * (`expectedReceipts`) and a sequential-vs-parallel cross-check (`crossCheck`).
 * Each check is `passed`, `failed` or `not-applicable`, with expected and actual values.
 *
 * @example
 * const result = await executeBlock({ block, state })
 * const report = await verifyBlock({ block, result, state, crossCheck: true })
 * report.passed // true
 */
export async function verifyBlock(params: VerifyBlockParameters): Promise<VerificationReport> {
  if (params === null || typeof params !== 'object') throw new InvalidInputError('verifyBlock takes one options object')
  const { result, block } = params
  const output = result === null || typeof result !== 'object' ? undefined : nativeOutputOf(result)
  if (!output) throw new InvalidInputError('result must be a value returned by executeBlock')
  if (block === undefined || block === null) throw new InvalidInputError('block is required')
  const number = blockNumberOf(block)
  if (number !== undefined && number !== result.number) {
    throw new InvalidInputError(`the result is of block ${result.number}, not of the given block ${number}`)
  }
  if (params.fullState && params.state === undefined) throw new InvalidInputError('fullState needs the pre-state (state)')
  if (params.crossCheck && params.state === undefined) throw new InvalidInputError('crossCheck needs the pre-state (state)')

  // Parsed (or loaded from an adapter) once, for the state root and the cross-check.
  let state: Promise<PreparedState> | undefined
  const preparedState = () => (state ??= wholeState(params))
  const fullState = params.fullState ? await preparedState() : undefined
  let header: NativeCheck[]
  try {
    header = JSON.parse(await output.checkReportJson(fullState)) as NativeCheck[]
  } catch (e) {
    throw fromNative(e)
  }
  if (params.checkHeader !== false && !header.some((c) => c.name === 'transactionsRoot') && !isPreparedBlock(block)) {
    header.push(...(await integrityChecks(block, params.chain)))
  }
  const checks: Check[] = [...header, cumulativeGasCheck(result, params.expectedReceipts)]
  if (params.crossCheck) checks.push(await crossCheck(params, output, result, preparedState))
  return { number: result.number, hash: result.hash, passed: checks.every((c) => c.status !== 'failed'), checks }
}
