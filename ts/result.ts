// The execution result in viem's vocabulary: bigint quantities, Hex/Address/Hash strings. Receipts
// and the state diff are decoded on first access (a full block's receipts are megabytes of JSON).
import { hexToBigInt, hexToNumber, transactionType, type Address, type Hash, type Hex, type TransactionType } from 'viem'
import type { NativeExecutionOutput } from './native.js'
import type { StateLoadStats } from './state.js'
import type { TransactionTrace } from './trace.js'

export type Log = {
  address: Address
  topics: Hex[]
  data: Hex
  /** Position of the log in the block. */
  logIndex: number
  transactionIndex: number
  transactionHash: Hash
}

export type Receipt = {
  transactionHash: Hash
  transactionIndex: number
  type: TransactionType
  status: 'success' | 'reverted'
  gasUsed: bigint
  cumulativeGasUsed: bigint
  logs: Log[]
  logsBloom: Hex
  contractAddress: Address | null
}

/** How one account differs after the block. */
export type AccountDiff = {
  /** The account does not exist after the block. */
  deleted: boolean
  /** The account did not exist before the block. */
  created: boolean
  /** Self-destructed during the block: its earlier storage is gone. */
  storageCleared: boolean
  balance: bigint
  nonce: number
  codeHash: Hash
  /** New code, when it changed. */
  code?: Hex
  /** Slots whose value changed, with their value after the block. */
  storage: Record<Hex, Hex>
}

export type StateDiff = Record<Address, AccountDiff>

/**
 * The engine that ran a block: `sequential`, `blockStm` (Block-STM), `transferGroups` (a block of
 * plain transfers in groups that share no account) or `guessedGroups` (a block of ERC-20
 * transfers in groups guessed from their call data, checked after the run).
 */
export type ExecutionEngine = 'sequential' | 'blockStm' | 'transferGroups' | 'guessedGroups'

export type ExecutionStats = {
  mode: 'sequential' | 'parallel'
  /** Which engine ran the block (which parallel one, when `mode` is `parallel`). */
  engine: ExecutionEngine
  threads: number
  /** Why auto mode ran sequentially, or why a parallel run fell back. */
  reason: string | null
  executions: number
  reexecutions: number
  validationAborts: number
  dependencyWaits: number
  /** Transaction execution wall time, microseconds. */
  executionUs: number
  /** Whole engine call wall time, microseconds. */
  totalUs: number
}

/**
 * The result checked against the block header; `receiptsRoot` is null before Byzantium,
 * `requestsHash` before Prague or where the requests are not known (the EIP-7002/7251 request
 * contracts are not in the pre-state, or the chain is not mainnet).
 */
export type Verification = {
  gasUsed: boolean
  receiptsRoot: boolean | null
  logsBloom: boolean
  requestsHash: boolean | null
  /** The post-state root, computed when the block ran on an execution witness (`witnessState`). */
  stateRoot?: boolean
}

/** No header check failed (those that do not apply are null or absent). */
export function headerPassed(v: Verification): boolean {
  return v.gasUsed && v.logsBloom && v.receiptsRoot !== false && v.requestsHash !== false && v.stateRoot !== false
}

export type ExecutionResult = {
  number: bigint
  hash: Hash | null
  gasUsed: bigint
  logsBloom: Hex
  /** Hashed on first access (a trie of all receipts). */
  readonly receiptsRoot: Hash
  /** Things the diff could not include (e.g. uncle rewards without uncle headers). */
  warnings: string[]
  stats: ExecutionStats
  /** How a state adapter of a partial state (RPC proofs, prestate trace, cache) loaded the pre-state. */
  stateStats?: StateLoadStats
  /** The header checks; computed on first access (needs the receipts root). */
  readonly verification: Verification
  /** Decoded on first access. */
  readonly receipts: Receipt[]
  /** All logs of the block in order; decoded on first access. */
  readonly logs: Log[]
  /** Post-state diff by address; decoded on first access. */
  readonly stateDiff: StateDiff
  /**
   * With `trace`: every transaction's trace in block order, the node's JSON as is
   * (debug_traceBlockByNumber); parsed on first access.
   */
  readonly traces?: TransactionTrace[]
}

type RawLog = { address: Address; topics: Hex[]; data: Hex }
type RawReceipt = Omit<Receipt, 'transactionIndex' | 'type' | 'status' | 'gasUsed' | 'cumulativeGasUsed' | 'logs'> & {
  transactionIndex: Hex
  type: Hex
  status: boolean
  gasUsed: Hex
  cumulativeGasUsed: Hex
  logs: RawLog[]
}
type RawAccountDiff = Omit<AccountDiff, 'balance' | 'nonce'> & { balance: Hex; nonce: Hex }

const TYPE_NAMES: Record<string, TransactionType> = transactionType

function decodeReceipts(raw: RawReceipt[]): Receipt[] {
  let logIndex = 0
  return raw.map((r) => {
    const transactionIndex = hexToNumber(r.transactionIndex)
    return {
      transactionHash: r.transactionHash,
      transactionIndex,
      type: TYPE_NAMES[r.type] ?? (r.type as TransactionType),
      status: r.status ? 'success' : 'reverted',
      gasUsed: hexToBigInt(r.gasUsed),
      cumulativeGasUsed: hexToBigInt(r.cumulativeGasUsed),
      logs: r.logs.map((l) => ({ ...l, logIndex: logIndex++, transactionIndex, transactionHash: r.transactionHash })),
      logsBloom: r.logsBloom,
      contractAddress: r.contractAddress ?? null,
    }
  })
}

function decodeStateDiff(raw: Record<Address, RawAccountDiff>): StateDiff {
  const out: StateDiff = {}
  for (const [address, d] of Object.entries(raw) as [Address, RawAccountDiff][]) {
    out[address] = { ...d, balance: hexToBigInt(d.balance), nonce: hexToNumber(d.nonce) }
  }
  return out
}

type HeaderChecks = { receiptsRoot: Hash; verification: Verification }

/** The receipts root and the header checks of a native output (hashed natively, once). */
export function headerChecks(output: NativeExecutionOutput): HeaderChecks {
  return JSON.parse(output.headerChecksJson()) as HeaderChecks
}

// The native output behind each public result, for verifyBlock (kept out of the public shape).
const outputs = new WeakMap<ExecutionResult, NativeExecutionOutput>()

/** The native output of a result returned by executeBlock, or undefined for any other object. */
export function nativeOutputOf(result: ExecutionResult): NativeExecutionOutput | undefined {
  return outputs.get(result)
}

/** Builds the public result around the native output. */
export function toExecutionResult(output: NativeExecutionOutput, stateStats?: StateLoadStats): ExecutionResult {
  const result = buildResult(output, stateStats)
  outputs.set(result, output)
  return result
}

function buildResult(output: NativeExecutionOutput, stateStats?: StateLoadStats): ExecutionResult {
  const s = JSON.parse(output.summary) as {
    number: Hex
    hash: Hash | null
    gasUsed: Hex
    logsBloom: Hex
    warnings: string[]
    stats: ExecutionStats
  }
  let receipts: Receipt[] | undefined
  let stateDiff: StateDiff | undefined
  let checks: HeaderChecks | undefined
  const result: ExecutionResult = {
    number: hexToBigInt(s.number),
    hash: s.hash,
    gasUsed: hexToBigInt(s.gasUsed),
    logsBloom: s.logsBloom,
    warnings: s.warnings,
    stats: s.stats,
    ...(stateStats ? { stateStats } : {}),
    get receiptsRoot() {
      checks ??= headerChecks(output)
      return checks.receiptsRoot
    },
    get verification() {
      checks ??= headerChecks(output)
      return checks.verification
    },
    get receipts() {
      receipts ??= decodeReceipts(JSON.parse(output.receiptsJson()) as RawReceipt[])
      return receipts
    },
    get logs() {
      return this.receipts.flatMap((r) => r.logs)
    },
    get stateDiff() {
      stateDiff ??= decodeStateDiff(JSON.parse(output.stateDiffJson()) as Record<Address, RawAccountDiff>)
      return stateDiff
    },
  }
  const tracesJson = output.tracesJson
  if (tracesJson) {
    // Defined after the fact so that only traced results have the key, still parsed lazily.
    let traces: TransactionTrace[] | undefined
    Object.defineProperty(result, 'traces', {
      enumerable: true,
      get() {
        traces ??= JSON.parse(tracesJson) as TransactionTrace[]
        return traces
      },
    })
  }
  return result
}

/** Same receipts and post-state (statistics aside): used to check parallel against sequential. */
export function sameOutcome(a: NativeExecutionOutput, b: NativeExecutionOutput): boolean {
  return a.receiptsJson() === b.receiptsJson() && a.stateDiffJson() === b.stateDiffJson()
}
