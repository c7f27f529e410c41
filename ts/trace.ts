// Geth tracer configs for executeBlock({ trace }) and the traces it returns: exactly the JSON a
// geth or reth node answers to debug_traceBlockByNumber(n, config), computed by the engine from
// each transaction's committed pre-state (revm-inspectors' tracers, all cores at once).
import type { Address, Hash, Hex } from 'viem'
import { InvalidInputError } from './errors.js'

export type CallTracerConfig = { onlyTopCall?: boolean; withLog?: boolean }
export type PrestateTracerConfig = { diffMode?: boolean; disableCode?: boolean; disableStorage?: boolean }
export type FlatCallTracerConfig = { convertParityErrors?: boolean; includePrecompiles?: boolean }

/** A geth tracer config; a bare tracer name stands for `{ tracer: name }`. */
export type TraceConfig =
  | { tracer: 'callTracer'; tracerConfig?: CallTracerConfig }
  | { tracer: 'prestateTracer'; tracerConfig?: PrestateTracerConfig }
  | { tracer: 'flatCallTracer'; tracerConfig?: FlatCallTracerConfig }
  | { tracer: '4byteTracer'; tracerConfig?: Record<string, never> }
  | TracerName

export type TracerName = 'callTracer' | 'prestateTracer' | 'flatCallTracer' | '4byteTracer'

export const TRACERS: readonly TracerName[] = ['callTracer', 'prestateTracer', 'flatCallTracer', '4byteTracer']

/** geth's callTracer frame (hex quantities, as the node returns them). */
export type CallFrame = {
  from: Address
  gas: Hex
  gasUsed: Hex
  to?: Address
  input: Hex
  output?: Hex
  error?: string
  revertReason?: string
  calls?: CallFrame[]
  logs?: { address: Address; topics: Hex[]; data: Hex; position: Hex }[]
  value?: Hex
  type: string
}

export type PrestateAccount = { balance?: Hex; nonce?: number; code?: Hex; storage?: Record<Hash, Hash> }
/** prestateTracer: the accounts a transaction read, or with `diffMode` `{ pre, post }`. */
export type PrestateResult = Record<Address, PrestateAccount> | { pre: Record<Address, PrestateAccount>; post: Record<Address, PrestateAccount> }
/** flatCallTracer: parity-style traces (`trace_block` shape). */
export type FlatCallTrace = {
  action: Record<string, unknown>
  blockHash: Hash
  blockNumber: number
  result?: Record<string, unknown> | null
  error?: string
  subtraces: number
  traceAddress: number[]
  transactionHash: Hash
  transactionPosition: number
  type: string
}
/** 4byteTracer: `{ '0xselector-calldatasize': count }`. */
export type FourByteResult = Record<string, number>

export type TraceResult = CallFrame | PrestateResult | FlatCallTrace[] | FourByteResult

/** One transaction's trace, as an element of debug_traceBlockByNumber's answer. */
export type TransactionTrace<result = TraceResult> = { txHash: Hash; result: result }

/** The config as geth's JSON (checked here for shape; the engine checks the rest). */
export function traceConfigJson(trace: unknown): string {
  const config = typeof trace === 'string' ? { tracer: trace } : trace
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new InvalidInputError(`trace must be a tracer name or { tracer, tracerConfig }, got ${JSON.stringify(trace)}`)
  }
  const { tracer, tracerConfig } = config as { tracer?: unknown; tracerConfig?: unknown }
  if (!TRACERS.includes(tracer as TracerName)) {
    throw new InvalidInputError(`trace.tracer must be one of ${TRACERS.join(', ')}, got ${JSON.stringify(tracer)}`)
  }
  if (tracerConfig !== undefined && (tracerConfig === null || typeof tracerConfig !== 'object' || Array.isArray(tracerConfig))) {
    throw new InvalidInputError(`trace.tracerConfig must be an object, got ${JSON.stringify(tracerConfig)}`)
  }
  return JSON.stringify(config)
}
