// What `parallel-evm bench` measures, one row per block: the shape of `--json` lines and of the
// data embedded in the `--html` report.
import { availableParallelism, cpus, platform, release, totalmem } from 'node:os'
import type { ExecutionEngine } from '../result.js'

export type PeerResult =
  | { name: 'ethereumjs'; ms: number; mgasPerSecond: number; gasUsed: number; gasMatches: boolean; failedTxs: number; fasterThanPeer: number }
  | { name: 'ethereumjs'; error: string }

export type BenchRow = {
  /** Display name: the workload (`erc20 ×1000`) or `mainnet <number>`. */
  block: string
  /** The generated workload (`erc20-hot`), for generated blocks. */
  workload?: string
  kind: 'generated' | 'mainnet'
  txs: number
  gas: number
  /** Fastest sequential run, ms. */
  sequentialMs: number
  /** Fastest forced-parallel run per thread count, ms. */
  parallelMs: Record<string, number>
  /** sequentialMs / parallelMs per thread count. */
  speedup: Record<string, number>
  bestSpeedup: number
  /** Re-executions per thread count (from the verification run). */
  reexecutions: Record<string, number>
  /** Gas per second, in millions: `sequential` and per thread count. */
  mgasPerSecond: Record<string, number>
  /** Auto mode (the default: sequential where parallelism would not pay) at `threads` threads. */
  auto: { threads: number; ms: number; speedup: number; ran: 'parallel' | 'sequential'; engine?: ExecutionEngine; reason: string | null }
  /** Every parallel run equals the sequential one (and mainnet blocks match their header). */
  verified: boolean
  peer?: PeerResult
}

export type Machine = { cpus: number; model: string; platform: string; memoryGiB: number; node: string }

export type BenchReport = { date: string; machine: Machine; threads: number[]; rows: BenchRow[] }

export function machine(): Machine {
  return {
    cpus: availableParallelism(),
    model: cpus()[0]?.model.trim() ?? 'unknown',
    platform: `${platform()} ${release()}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  }
}

/** Millions of gas per second for `gas` in `ms`. */
export const mgasPerSecond = (gas: number, ms: number) => gas / ms / 1000
