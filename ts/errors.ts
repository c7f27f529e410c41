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
