// Conformance with the Ethereum consensus test vectors (ethereum/tests GeneralStateTests and
// BlockchainTests): the engine's runner, one file at a time off the JS thread, so that a caller can
// show progress. The counts of the files' reports are summed here.
import { readFile } from 'node:fs/promises'
import { InvalidInputError, fromNative } from './errors.js'
import { native } from './native.js'

/**
 * How a case's block is run: sequential, forced parallel, auto, the group engine on every block, or
 * (state tests) contended: the transaction twice in one block, parallel checked against sequential.
 */
export type ConformanceMode = 'sequential' | 'parallel' | 'auto' | 'groups' | 'contended'

/** Counts of one suite in one mode: a state-test case or a whole blockchain test is one unit. */
export type ConformanceSummary = {
  suite: string
  mode: ConformanceMode
  threads: number
  passed: number
  failed: number
  skipped: number
  /** Cases the group engine declined (the engines of the parallel modes then take them). */
  fellBack?: number
  /** Blocks per engine that ran them (`blockStm`, `transferGroups`, `sequential`, ...). */
  engines: Record<string, number>
}

/** One failed case with the first field that differs. */
export type ConformanceFailure = {
  suite: string
  mode: ConformanceMode
  threads: number
  file: string
  test: string
  /** State test: `data`, `gas`, `value` indexes; blockchain test: `block` (none: the final state). */
  case: { data?: number; gas?: number; value?: number; block?: number }
  field: string
  expected: string
  actual: string
}

export type ConformanceReport = {
  summaries: ConformanceSummary[]
  failures: ConformanceFailure[]
  skipped: { file: string; test: string; reason: string }[]
  /** Nothing failed. */
  passed: boolean
}

export type RunConformanceParameters = {
  /** Test files or folders (walked recursively for `.json` files). */
  paths: readonly string[]
  /** Modes to run (default: all five). */
  modes?: readonly ConformanceMode[]
  /** Thread counts of the parallel modes (default: 1, 2, 4 and 8). */
  threads?: readonly number[]
  /** A skip list file: `PATH[::TEST] REASON` per line. */
  skipList?: string
  /** Called after each file. */
  onFile?: (progress: { done: number; total: number; file: string }) => void
}

export type RunConformanceReturnType = ConformanceReport

const MODES: readonly ConformanceMode[] = ['sequential', 'parallel', 'auto', 'groups', 'contended']

/** Adds one file's report into `into` (summaries matched by suite, mode and threads). */
function merge(into: ConformanceReport, part: Omit<ConformanceReport, 'passed'>): void {
  for (const s of part.summaries) {
    const mine = into.summaries.find((m) => m.suite === s.suite && m.mode === s.mode && m.threads === s.threads)
    if (!mine) {
      into.summaries.push({ ...s, engines: { ...s.engines } })
      continue
    }
    mine.passed += s.passed
    mine.failed += s.failed
    mine.skipped += s.skipped
    if (s.fellBack) mine.fellBack = (mine.fellBack ?? 0) + s.fellBack
    for (const [engine, n] of Object.entries(s.engines)) mine.engines[engine] = (mine.engines[engine] ?? 0) + n
  }
  into.failures.push(...part.failures)
  into.skipped.push(...part.skipped)
}

/**
 * Runs the consensus test vectors under `paths` through the engine in every requested mode and
 * checks post-state roots, logs, headers and final states against them.
 *
 * ```ts
 * const report = await runConformance({ paths: ['../shared/fixtures/ethereum-tests'], modes: ['sequential', 'parallel'], threads: [2] })
 * console.log(report.summaries, report.passed)
 * ```
 */
export async function runConformance(params: RunConformanceParameters): Promise<RunConformanceReturnType> {
  if (params === null || typeof params !== 'object' || !Array.isArray(params.paths)) throw new InvalidInputError('runConformance takes one options object with paths')
  if (params.paths.length === 0) throw new InvalidInputError('runConformance: no test file or folder given')
  for (const m of params.modes ?? []) if (!MODES.includes(m)) throw new InvalidInputError(`unknown mode '${m}' (expected ${MODES.join(', ')})`)
  for (const t of params.threads ?? []) if (!Number.isInteger(t) || t < 1) throw new InvalidInputError(`threads must be positive integers, got ${t}`)
  let skipText: string | undefined
  if (params.skipList !== undefined) {
    try {
      skipText = await readFile(params.skipList, 'utf8')
    } catch (e) {
      throw new InvalidInputError(`${params.skipList}: ${(e as Error).message}`, { cause: e })
    }
  }
  const report: ConformanceReport = { summaries: [], failures: [], skipped: [], passed: true }
  try {
    const modes = native().conformanceModes([...(params.modes ?? [])], [...(params.threads ?? [])])
    const files = await native().conformanceFiles([...params.paths])
    for (const [i, file] of files.entries()) {
      merge(report, JSON.parse(await native().conformanceFile(file, modes, skipText)) as Omit<ConformanceReport, 'passed'>)
      params.onFile?.({ done: i + 1, total: files.length, file })
    }
  } catch (e) {
    throw fromNative(e)
  }
  report.passed = report.failures.length === 0 && report.summaries.every((s) => s.failed === 0)
  return report
}
