// Pre-state input: geth prestateTracer JSON (as an object or raw bytes), a prepared handle, or a
// state adapter that produces one of those for a block (RPC adapters implement it).
import type { Address, Hash, Hex } from 'viem'
import { asBuffer, jsonBytes, type RpcBlock } from './block.js'
import { InvalidInputError, fromNative } from './errors.js'
import { native, type NativePreparedState } from './native.js'

/** One account in geth `prestateTracer` format (non-diff mode). Absent accounts do not exist. */
export type PrestateAccount = {
  balance?: Hex | bigint
  nonce?: number | bigint | Hex
  code?: Hex
  storage?: Record<Hex, Hex>
}

/** The state before a block: every account and slot the block reads. */
export type Prestate = Record<Address, PrestateAccount>

/** Hashes of earlier blocks for BLOCKHASH: `{ "<decimal number>": "0xhash" }` or a Map. */
export type BlockHashes = Record<string, Hash> | Map<bigint | number, Hash>

/** A pre-state parsed once by the engine; reuse it across executions. */
export type PreparedState = NativePreparedState

/** Keys an execution on a partial state needed and the state lacked (the engine's report). */
export type MissingKeys = {
  accounts: Address[]
  /** Slots (32-byte hex) by account. */
  storage: Record<Address, Hash[]>
  blockHashes: number[]
}

/** One execution round on a partial state. */
export type StateRound = {
  /** Keys the round missed (0 in the last round). */
  missingAccounts: number
  missingSlots: number
  missingBlockHashes: number
  /** Time spent fetching what it missed, ms. */
  fetchMs: number
}

/** How an adapter obtained a block's pre-state. */
export type StateLoadStats = {
  kind: string
  /** Execution rounds: every round but the last missed keys that were then fetched. */
  rounds: StateRound[]
  /** JSON-RPC calls made for this block (0 when everything came from the cache). */
  rpcCalls: number
  /** Reads answered by the on-disk cache. */
  cacheHits: number
  /** Time spent loading before the first round, ms. */
  loadMs: number
}

/**
 * A pre-state known in part (fetched on demand): executions report the keys they miss, the
 * adapter fetches them (`fetchMissing`) and the block runs again, at most `maxRounds` times.
 */
export type PartialStateSource = {
  partial: PreparedState
  fetchMissing(missing: MissingKeys): Promise<PreparedState>
  maxRounds: number
  /** Statistics so far (rounds are filled in by the executor). */
  stats(): Omit<StateLoadStats, 'rounds'>
}

/** What an adapter hands over for one block. */
export type StateSource = { prestate: Prestate | Uint8Array; blockHashes?: BlockHashes | Uint8Array } | PreparedState | PartialStateSource

/**
 * A source of pre-state for a block. `kind` names the source (`'prestate'`, `'rpc-prestate'`,
 * `'rpc-proofs'`, `'cache'`); `load` is called once per `executeBlock`.
 */
export interface StateAdapter {
  readonly kind: string
  load(args: { block: RpcBlock | undefined }): Promise<StateSource>
}

export function isPartialSource(value: unknown): value is PartialStateSource {
  return typeof (value as PartialStateSource)?.fetchMissing === 'function'
}

/** Anything `executeBlock` takes as state. */
export type StateLike = Prestate | Uint8Array | PreparedState | StateAdapter

export function isPreparedState(value: unknown): value is PreparedState {
  return value instanceof native().PreparedState
}

export function isStateAdapter(value: unknown): value is StateAdapter {
  return typeof (value as StateAdapter)?.load === 'function' && typeof (value as StateAdapter)?.kind === 'string'
}

/** The trivial adapter: a pre-state already in memory. */
export function prestateAdapter(prestate: Prestate | Uint8Array, blockHashes?: BlockHashes | Uint8Array): StateAdapter {
  return { kind: 'prestate', load: async () => ({ prestate, blockHashes }) }
}

function blockHashesBytes(hashes: BlockHashes | Uint8Array): Buffer {
  if (hashes instanceof Uint8Array) return asBuffer(hashes)
  if (hashes instanceof Map) return jsonBytes(Object.fromEntries([...hashes].map(([n, h]) => [n.toString(), h])))
  return jsonBytes(hashes)
}

/** `debug_executionWitness` as reth serves it: RLP trie nodes, bytecodes, key preimages and RLP ancestor headers. */
export type ExecutionWitness = { state: readonly Hex[]; codes: readonly Hex[]; keys?: readonly Hex[]; headers?: readonly Hex[] }

export type WitnessStateOptions = {
  /** Hashes for BLOCKHASH beyond the witness's own headers. */
  blockHashes?: BlockHashes | Uint8Array
  /** The parent block's state root, when the witness carries no parent header (else taken from it). */
  parentStateRoot?: Hash
}

/**
 * A block's pre-state from its execution witness: the trie nodes must hash up to the parent's
 * state root (from the witness's parent header); accounts and slots are read along their trie
 * paths, and a key the witness does not prove fails the execution with a `StateError` (never an
 * empty read). Executions on it check their post-state root: `verification.stateRoot` and
 * `verifyBlock`'s `stateRoot` check.
 *
 * @example
 * const state = await witnessState(await client.request({ method: 'debug_executionWitness', params: [toHex(n)] }))
 * const result = await executeBlock({ block, state })
 * result.verification.stateRoot // true
 */
export async function witnessState(witness: ExecutionWitness | Uint8Array, options: WitnessStateOptions = {}): Promise<PreparedState> {
  if (witness === null || typeof witness !== 'object' || Array.isArray(witness)) {
    throw new InvalidInputError(`witness must be a debug_executionWitness object or its JSON bytes, got ${witness === null ? 'null' : typeof witness}`)
  }
  if (!(witness instanceof Uint8Array) && (!Array.isArray(witness.state) || !Array.isArray(witness.codes))) {
    throw new InvalidInputError('witness must have state and codes arrays (debug_executionWitness)')
  }
  const bytes = witness instanceof Uint8Array ? asBuffer(witness) : jsonBytes(witness)
  const hashes = options.blockHashes === undefined ? undefined : blockHashesBytes(options.blockHashes)
  try {
    return await native().prepareWitnessState(bytes, hashes, options.parentStateRoot)
  } catch (e) {
    throw fromNative(e)
  }
}

/** Parses a pre-state (and block hashes) once in the engine, off the JS thread. */
export async function prepareState(prestate: Prestate | Uint8Array, options: { blockHashes?: BlockHashes | Uint8Array } = {}): Promise<PreparedState> {
  if (prestate === null || typeof prestate !== 'object' || Array.isArray(prestate)) {
    throw new InvalidInputError(`state must be a prestate object, JSON bytes, a prepared state or a state adapter, got ${prestate === null ? 'null' : typeof prestate}`)
  }
  const bytes = prestate instanceof Uint8Array ? asBuffer(prestate) : jsonBytes(prestate)
  const hashes = options.blockHashes === undefined ? undefined : blockHashesBytes(options.blockHashes)
  try {
    return await native().prepareState(bytes, hashes, undefined)
  } catch (e) {
    throw fromNative(e)
  }
}
