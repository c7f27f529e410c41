// Timing shared by `run` and `bench`: the same measurements as the Rust replay example.
import { executeNative, type ExecutionMode } from '../execute.js'
import type { PreparedBlock } from '../block.js'
import type { NativeExecutionOutput } from '../native.js'
import type { PreparedState } from '../state.js'

export type Timed = { ms: number; output: NativeExecutionOutput }

/** Most timed rounds per block when `minMs` asks for more than `runs`. */
export const MAX_ROUNDS = 100

/**
 * Sequential against `mode`: one untimed run of each first (a process's first parallel runs
 * pay for starting pool threads and faulting in fresh memory, up to several times the block's
 * own time on a 2-core VM), then rounds that alternate the two, so that both see the same
 * noisy stretches of a shared machine; the best time of each. At least `runs` rounds, and more
 * (up to `MAX_ROUNDS`) until the timed sequential runs add up to `minMs`: the best of 3 runs of
 * a 0.3 ms block moved by 10-30% between two runs on a shared 2-core VM.
 */
export async function compareWithSequential(
  runs: number,
  block: PreparedBlock,
  state: PreparedState,
  threads: number,
  mode: ExecutionMode,
  minMs = 0,
): Promise<{ seq: Timed; par: Timed; rounds: number }> {
  const seq = { ms: Number.POSITIVE_INFINITY, total: 0, output: undefined as NativeExecutionOutput | undefined }
  const par = { ms: Number.POSITIVE_INFINITY, total: 0, output: undefined as NativeExecutionOutput | undefined }
  const round = async (timed: boolean) => {
    for (const [t, n, m] of [
      [seq, 1, 'sequential'],
      [par, threads, mode],
    ] as const) {
      const start = performance.now()
      t.output = await executeNative({ block, state, threads: n, mode: m })
      const ms = performance.now() - start
      if (timed) {
        t.ms = Math.min(t.ms, ms)
        t.total += ms
      }
    }
  }
  await round(false)
  let rounds = 0
  while (rounds < runs || (seq.total < minMs && rounds < MAX_ROUNDS)) {
    await round(true)
    rounds++
  }
  return { seq: { ms: seq.ms, output: seq.output! }, par: { ms: par.ms, output: par.output! }, rounds }
}

export const round3 = (x: number) => Math.round(x * 1000) / 1000
