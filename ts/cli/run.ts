// `parallel-evm run`: executes fixture blocks and reports like the Rust replay example.
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import cliProgress from 'cli-progress'
import type { PreparedBlock } from '../block.js'
import type { ExecutionMode } from '../execute.js'
import type { PreparedState } from '../state.js'
import { prepareFixture } from '../fixture.js'
import { headerChecks, headerPassed, sameOutcome, type ExecutionStats, type Verification } from '../result.js'
import { compareWithSequential, round3 } from './timing.js'
import { check, fmtGas, headerLine, UsageError } from './format.js'

export type RunOptions = { prestate?: string; threads: number; mode: ExecutionMode; json: boolean; repeat: number; minTime?: number }

/** A block folder, a block.json file, or a folder of block folders (e.g. fixtures/mainnet). */
export function blockPaths(path: string): string[] {
  if (!existsSync(path)) throw new UsageError(`${path} does not exist`)
  if (statSync(path).isFile() || existsSync(join(path, 'block.json'))) return [path]
  const dirs = readdirSync(path)
    .filter((d) => existsSync(join(path, d, 'block.json')))
    .sort((a, b) => Number(a) - Number(b) || a.localeCompare(b))
    .map((d) => join(path, d))
  if (dirs.length === 0) throw new UsageError(`${path} holds no block.json (nor folders with one)`)
  return dirs
}

export async function runCommand(path: string, options: RunOptions): Promise<number> {
  const paths = blockPaths(path)
  if (options.prestate && paths.length > 1) throw new UsageError('--prestate needs a single block')
  const bar =
    !options.json && paths.length > 1 && process.stderr.isTTY
      ? new cliProgress.SingleBar({ format: 'blocks {bar} {value}/{total} {block}', clearOnComplete: true }, cliProgress.Presets.shades_classic)
      : undefined
  bar?.start(paths.length, 0, { block: '' })
  let failed = 0
  for (const p of paths) {
    bar?.update({ block: p })
    try {
      const line = await runOne(p, options)
      const ok = headerPassed(line.verified) && line.verified.matchesSequential
      if (!ok) failed++
      const text = options.json ? JSON.stringify(line) : describe(line)
      console.log(text)
    } catch (e) {
      failed++
      const err = e as { code?: string; message: string; shortMessage?: string; details?: string }
      if (e instanceof UsageError) throw e
      if (options.json) console.log(JSON.stringify({ path: p, error: err.details || err.message, code: err.code ?? 'INTERNAL_ERROR' }))
      else console.error(`${p}: ${err.code ?? 'ERROR'}: ${err.details || err.message}`)
    }
    bar?.increment()
  }
  bar?.stop()
  if (!options.json && paths.length > 1) console.log(`${paths.length - failed}/${paths.length} blocks verified`)
  return failed === 0 ? 0 : 1
}

export type RunLine = {
  number: number
  txs: number
  gasUsed: number
  mode: ExecutionStats['mode']
  engine: ExecutionStats['engine']
  threads: number
  verified: Verification & { matchesSequential: boolean }
  seqMs: number
  parMs: number
  speedup: number
  /** Timed rounds of each side (at least `--repeat`, more for blocks shorter than `--min-time`). */
  rounds: number
  reexecutions: number
  reason: string | null
}

async function runOne(path: string, options: RunOptions): Promise<RunLine> {
  const { block, state } = await prepareFixture(path, { prestate: options.prestate })
  return measureBlock(block, state, options)
}

/** Times a prepared block sequentially and in the requested mode, and checks the result. */
export async function measureBlock(block: PreparedBlock, state: PreparedState, options: { repeat: number; minTime?: number; threads: number; mode: ExecutionMode }): Promise<RunLine> {
  const { seq, par, rounds } = await compareWithSequential(options.repeat, block, state, options.threads, options.mode, options.minTime ?? 0)
  const s = JSON.parse(par.output.summary) as { gasUsed: string; stats: ExecutionStats }
  return {
    number: block.number,
    txs: block.txCount,
    gasUsed: Number(BigInt(s.gasUsed)),
    mode: s.stats.mode,
    engine: s.stats.engine,
    threads: s.stats.threads,
    verified: { ...headerChecks(par.output).verification, matchesSequential: sameOutcome(seq.output, par.output) },
    seqMs: round3(seq.ms),
    parMs: round3(par.ms),
    speedup: round3(seq.ms / par.ms),
    rounds,
    reexecutions: s.stats.reexecutions,
    reason: s.stats.reason,
  }
}

const ENGINE_LABELS: Record<ExecutionStats['engine'], string> = {
  sequential: 'sequential',
  blockStm: 'Block-STM',
  transferGroups: 'transfer groups',
  guessedGroups: 'guessed groups',
}

function describe(l: RunLine): string {
  const v = l.verified
  return (
    `block ${l.number}: ${l.txs} txs, ${fmtGas(l.gasUsed)} gas, ${l.mode}${l.mode === 'parallel' ? ` (${ENGINE_LABELS[l.engine]})` : ''} on ${l.threads} thread${l.threads === 1 ? '' : 's'}` +
    `${l.reason ? ` (${l.reason})` : ''}\n` +
    `  time ${l.parMs.toFixed(2)} ms vs sequential ${l.seqMs.toFixed(2)} ms (best of ${l.rounds}): ${l.speedup.toFixed(2)}x, ${l.reexecutions} re-executions\n` +
    `  header: ${headerLine(v)}; matches sequential ${check(v.matchesSequential)}`
  )
}
