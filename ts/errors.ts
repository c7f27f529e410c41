// Typed errors: one base class carrying the engine's stable code, one subclass per code.

export type ErrorCode =
  | 'INVALID_INPUT'
  | 'INVALID_TRANSACTION'
  | 'INVALID_BLOCK'
  | 'MISSING_BLOCK_HASH'
  | 'STATE_ERROR'
  | 'INTERNAL_ERROR'
  | 'MISSING_DEPENDENCY'
  | 'RPC_ERROR'
  | 'RPC_INVALID_RESPONSE'
  | 'STATE_MISMATCH'
  | 'REORG'
  | 'REPLAY_FAILED'

export interface ParallelEvmErrorOptions {
  details?: string
  cause?: unknown
}

/** Base class of every error parallel-evm throws. `code` is stable; `details` is the engine's text. */
export class ParallelEvmError extends Error {
  override name = 'ParallelEvmError'
  readonly code: ErrorCode
  readonly shortMessage: string
  readonly details: string

  constructor(code: ErrorCode, shortMessage: string, options: ParallelEvmErrorOptions = {}) {
    const details = options.details ?? ''
    super(details ? `${shortMessage}\n\nDetails: ${details}` : shortMessage, { cause: options.cause })
    this.code = code
    this.shortMessage = shortMessage
    this.details = details
  }
}

/** Unparseable input: bad JSON, bad hex, a missing field, a value of the wrong type. */
export class InvalidInputError extends ParallelEvmError {
  override name = 'InvalidInputError'
  constructor(details: string, options: Omit<ParallelEvmErrorOptions, 'details'> = {}) {
    super('INVALID_INPUT', 'Invalid input.', { ...options, details })
  }
}

/** A transaction cannot be included (nonce, balance, gas, ...): the block is invalid. */
export class InvalidTransactionError extends ParallelEvmError {
  override name = 'InvalidTransactionError'
  /** Index of the offending transaction in the block. */
  readonly txIndex: number | undefined
  constructor(details: string, txIndex: number | undefined, options: Omit<ParallelEvmErrorOptions, 'details'> = {}) {
    super('INVALID_TRANSACTION', `Transaction ${txIndex ?? '?'} is invalid.`, { ...options, details })
    this.txIndex = txIndex
  }
}

/** The block breaks a rule that does not depend on one transaction. */
export class InvalidBlockError extends ParallelEvmError {
  override name = 'InvalidBlockError'
  constructor(details: string, options: Omit<ParallelEvmErrorOptions, 'details'> = {}) {
    super('INVALID_BLOCK', 'Invalid block.', { ...options, details })
  }
}

/** BLOCKHASH asked for a block whose hash was not supplied (`blockHashes`). */
export class MissingBlockHashError extends ParallelEvmError {
  override name = 'MissingBlockHashError'
  constructor(details: string, options: Omit<ParallelEvmErrorOptions, 'details'> = {}) {
    super('MISSING_BLOCK_HASH', 'A block hash needed by BLOCKHASH is missing.', { ...options, details })
  }
}

/** The state source failed or lacks data it must have. */
export class StateError extends ParallelEvmError {
  override name = 'StateError'
  constructor(details: string, options: Omit<ParallelEvmErrorOptions, 'details'> = {}) {
    super('STATE_ERROR', 'The pre-state is unusable.', { ...options, details })
  }
}

/** A bug in the engine (including a caught panic). Never a silently wrong result. */
export class InternalError extends ParallelEvmError {
  override name = 'InternalError'
  constructor(details: string, options: Omit<ParallelEvmErrorOptions, 'details'> = {}) {
    super('INTERNAL_ERROR', 'Internal error in parallel-evm.', { ...options, details })
  }
}

/** An optional package a feature needs (the bench's compiler, contracts, peer VM or charts) is not installed. */
export class MissingDependencyError extends ParallelEvmError {
  override name = 'MissingDependencyError'
  /** The npm package to install. */
  readonly packageName: string
  constructor(packageName: string, purpose: string, options: Omit<ParallelEvmErrorOptions, 'details'> = {}) {
    super('MISSING_DEPENDENCY', `The optional package '${packageName}' is not installed.`, {
      ...options,
      details: `${purpose} needs '${packageName}': npm install --save-dev ${packageName}`,
    })
    this.packageName = packageName
  }
}

/**
 * A JSON-RPC request failed: the node was unreachable, timed out, rate-limited or failing after
 * every retry, or it answered with an error.
 */
export class RpcError extends ParallelEvmError {
  override name = 'RpcError'
  /** The JSON-RPC method. */
  readonly method: string
  constructor(method: string, details: string, options: Omit<ParallelEvmErrorOptions, 'details'> = {}) {
    super('RPC_ERROR', `RPC request ${method} failed.`, { ...options, details })
    this.method = method
  }
}

/**
 * The node answered, but the answer is malformed or inconsistent with the block (a proof for
 * another state root, code whose hash is not the account's, a header of another block, ...).
 */
export class RpcResponseError extends ParallelEvmError {
  override name = 'RpcResponseError'
  readonly method: string
  constructor(method: string, details: string, options: Omit<ParallelEvmErrorOptions, 'details'> = {}) {
    super('RPC_INVALID_RESPONSE', `Invalid response to ${method}.`, { ...options, details })
    this.method = method
  }
}

/**
 * A range replay fetched a value for a key it carries from the blocks before, and the two differ:
 * the node's chain changed under the range (a reorg) or the engine is wrong. Never overwritten.
 */
export class StateMismatchError extends ParallelEvmError {
  override name = 'StateMismatchError'
  readonly blockNumber: bigint
  readonly address: string
  /** `balance`, `nonce`, `code`, `storage`, `existence` or `blockHash`. */
  readonly field: string
  /** The slot (for `storage`) or block number (for `blockHash`). */
  readonly key: string | undefined
  readonly carried: string
  readonly fetched: string
  constructor(blockNumber: bigint, m: { address: string; field: string; key?: string; carried: string; fetched: string }, options: Omit<ParallelEvmErrorOptions, 'details'> = {}) {
    super('STATE_MISMATCH', `Block ${blockNumber}: a fetched value differs from the carried state.`, {
      ...options,
      details: `${m.address} ${m.field}${m.key ? ` ${m.key}` : ''}: carried ${m.carried}, fetched ${m.fetched} (a reorg under the range, or an engine bug)`,
    })
    this.blockNumber = blockNumber
    this.address = m.address
    this.field = m.field
    this.key = m.key
    this.carried = m.carried
    this.fetched = m.fetched
  }
}

/** A block of a range does not follow the block before it: the chain was reorganised under the range. */
export class ReorgError extends ParallelEvmError {
  override name = 'ReorgError'
  readonly blockNumber: bigint
  /** The hash of the block before, as replayed. */
  readonly expectedParentHash: string
  /** The parent hash the block names. */
  readonly parentHash: string
  constructor(blockNumber: bigint, expectedParentHash: string, parentHash: string, options: Omit<ParallelEvmErrorOptions, 'details'> = {}) {
    super('REORG', `Block ${blockNumber} does not follow the block before it (reorg).`, {
      ...options,
      details: `block ${blockNumber} names ${parentHash} as its parent; block ${blockNumber - 1n} was ${expectedParentHash}`,
    })
    this.blockNumber = blockNumber
    this.expectedParentHash = expectedParentHash
    this.parentHash = parentHash
  }
}

/** A block of a range replay failed (its typed error is `cause`); the blocks before it were delivered. */
export class ReplayError extends ParallelEvmError {
  override name = 'ReplayError'
  readonly blockNumber: bigint
  /** The code of the error that stopped the range. */
  readonly causeCode: ErrorCode
  override readonly cause: ParallelEvmError
  constructor(blockNumber: bigint, cause: ParallelEvmError) {
    super('REPLAY_FAILED', `Block ${blockNumber} failed: ${cause.shortMessage}`, { details: `${cause.code}: ${cause.details || cause.shortMessage}`, cause })
    this.blockNumber = blockNumber
    this.causeCode = cause.code
    this.cause = cause
  }
}

/** Turns a rejection of the native addon (an Error with `code`, maybe `txIndex`) into a typed error. */
export function fromNative(error: unknown): ParallelEvmError {
  if (error instanceof ParallelEvmError) return error
  const e = error as { code?: unknown; message?: unknown; txIndex?: unknown }
  const details = typeof e?.message === 'string' ? e.message : String(error)
  const options = { cause: error }
  switch (e?.code) {
    case 'INVALID_INPUT':
      return new InvalidInputError(details, options)
    case 'INVALID_TRANSACTION':
      return new InvalidTransactionError(details, typeof e.txIndex === 'number' ? e.txIndex : undefined, options)
    case 'INVALID_BLOCK':
      return new InvalidBlockError(details, options)
    case 'MISSING_BLOCK_HASH':
      return new MissingBlockHashError(details, options)
    case 'STATE_ERROR':
      return new StateError(details, options)
    default:
      // Includes napi's own codes (e.g. an argument of the wrong JS type) and panics.
      if (typeof e?.code === 'string' && e.code.startsWith('Invalid')) return new InvalidInputError(details, options)
      return new InternalError(details, options)
  }
}
