// Timing shared by `run` and `bench`: the same measurements as the Rust replay example.
import { executeNative, type ExecutionMode } from '../execute.js'
import type { PreparedBlock } from '../block.js'
import type { NativeExecutionOutput } from '../native.js'
import type { PreparedState } from '../state.js'

export type Timed = { ms: number; output: NativeExecutionOutput }

/**
 * Sequential against `mode`: one untimed run of each first (a process's first parallel runs
 * pay for starting pool threads and faulting in fresh memory, up to several times the block's
 * own time on a 2-core VM), then `runs` rounds that alternate the two, so that both see the
 * same noisy stretches of a shared machine; the best time of each.
 */
export async function compareWithSequential(
  runs: number,
  block: PreparedBlock,
  state: PreparedState,
  threads: number,
  mode: ExecutionMode,
): Promise<{ seq: Timed; par: Timed }> {
  const seq = { ms: Number.POSITIVE_INFINITY, output: undefined as NativeExecutionOutput | undefined }
  const par = { ms: Number.POSITIVE_INFINITY, output: undefined as NativeExecutionOutput | undefined }
  for (let i = 0; i <= runs; i++) {
    for (const [t, n, m] of [[seq, 1, 'sequential'], [par, threads, mode]] as const) {
      const start = performance.now()
      t.output = await executeNative({ block, state, threads: n, mode: m })
      if (i > 0) t.ms = Math.min(t.ms, performance.now() - start)
    }
  }
  return { seq: { ms: seq.ms, output: seq.output! }, par: { ms: par.ms, output: par.output! } }
}

export const round3 = (x: number) => Math.round(x * 1000) / 1000
