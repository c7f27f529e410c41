// Timing shared by `run` and `bench`: the same measurements as the Rust replay example.
import { executeNative, type ExecutionMode } from '../execute.js'
import type { PreparedBlock } from '../block.js'
import type { NativeExecutionOutput } from '../native.js'
import type { PreparedState } from '../state.js'

export type Timed = { ms: number; output: NativeExecutionOutput }

/** Best wall time of `runs` executions, in milliseconds, and the last output. */
export async function bestOf(runs: number, block: PreparedBlock, state: PreparedState, threads: number, mode: ExecutionMode): Promise<Timed> {
  let best = Number.POSITIVE_INFINITY
  let output: NativeExecutionOutput | undefined
  for (let i = 0; i < runs; i++) {
    const t = performance.now()
    output = await executeNative({ block, state, threads, mode })
    best = Math.min(best, performance.now() - t)
  }
  return { ms: best, output: output! }
}

export const round3 = (x: number) => Math.round(x * 1000) / 1000
