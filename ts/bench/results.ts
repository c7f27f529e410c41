// Raw benchmark results on disk: every benchmark run (the CLI's `bench`, bench/suite.cjs,
// bench/node-vs-replay.cjs) writes one JSON file under bench/results/ with the machine, the
// commit and every measured row, and `npm run bench:report` turns the latest files into the
// docs' tables. A figure in the docs is always traceable to one of these files.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { machine, type Machine } from './report.js'

/** Version of the file layout below; bump when a field changes meaning. */
export const RESULTS_SCHEMA = 1

export type ResultsFile<Row = unknown> = {
  schema: typeof RESULTS_SCHEMA
  /** What was measured: `bench` (CLI), `mainnet`, `napi`, `generated`, `fixtures`, `peer`. */
  suite: string
  /** ISO date of the end of the run. */
  date: string
  /** `git rev-parse HEAD` of the checkout, null outside one. */
  commit: string | null
  /** Tracked files differed from `commit`. */
  dirty: boolean
  machine: Machine & { loadAverage: number[] }
  /** Thread counts measured. */
  threads: number[]
  /** The run's options (transactions per block, rounds, ...). */
  settings: Record<string, unknown>
  /** Free text from $PARALLEL_EVM_BENCH_NOTE, e.g. what else ran on the machine. */
  note?: string
  rows: Row[]
}

/** The package root (holds package.json; in a checkout also bench/). */
const packageRoot = resolve(__dirname, '..', '..')

/** `<checkout>/bench/results` when running from a repository checkout, else undefined (an installed package). */
export function defaultResultsDir(): string | undefined {
  return existsSync(join(packageRoot, 'bench', 'suite.cjs')) ? join(packageRoot, 'bench', 'results') : undefined
}

function git(args: string[]): string | null {
  try {
    return execFileSync('git', ['-C', packageRoot, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return null
  }
}

/** Commit and dirtiness of the checkout the code runs from. */
export function commitInfo(): { commit: string | null; dirty: boolean } {
  const commit = git(['rev-parse', 'HEAD'])
  return { commit, dirty: commit !== null && (git(['status', '--porcelain', '--untracked-files=no']) ?? '') !== '' }
}

/** A results file for `rows` measured now. */
export function resultsFile<Row>(suite: string, threads: number[], settings: Record<string, unknown>, rows: Row[]): ResultsFile<Row> {
  const note = process.env.PARALLEL_EVM_BENCH_NOTE
  return {
    schema: RESULTS_SCHEMA,
    suite,
    date: new Date().toISOString(),
    ...commitInfo(),
    machine: { ...machine(), loadAverage: loadavg().map((x) => Math.round(x * 100) / 100) },
    threads,
    settings,
    ...(note ? { note } : {}),
    rows,
  }
}

/** Writes `file` into `dir` as `<suite>-<date>.json` and returns its path. */
export function writeResults(dir: string, file: ResultsFile): string {
  mkdirSync(dir, { recursive: true })
  const path = join(dir, `${file.suite}-${file.date.replace(/[:.]/g, '-')}.json`)
  // The header indented, one row per line: readable and diffable.
  const { rows, ...head } = file
  const body = rows.map((r) => `    ${JSON.stringify(r)}`).join(',\n')
  writeFileSync(path, `${JSON.stringify(head, null, 2).replace(/\n}$/, `,\n  "rows": [\n${body}\n  ]\n}`)}\n`)
  return path
}

/** Every results file in `dir`, oldest first. */
export function readResults(dir: string): (ResultsFile & { path: string })[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({ ...(JSON.parse(readFileSync(join(dir, f), 'utf8')) as ResultsFile), path: join(dir, f) }))
    .filter((r) => r.schema === RESULTS_SCHEMA && typeof r.suite === 'string' && Array.isArray(r.rows))
    .sort((a, b) => a.date.localeCompare(b.date))
}

/** The newest results file of each suite in `dir`. */
export function latestResults(dir: string): Map<string, ResultsFile & { path: string }> {
  const latest = new Map<string, ResultsFile & { path: string }>()
  for (const r of readResults(dir)) latest.set(r.suite, r)
  return latest
}
