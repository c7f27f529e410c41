// `parallel-evm verify`: executes blocks and checks them (header, state root, expected receipts,
// sequential vs parallel). Blocks come from an async iterable of sources, so fixture folders and
// RPC ranges plug in the same way.
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import cliProgress from 'cli-progress'
import picocolors from 'picocolors'
import type { BlockLike, ChainConfig } from '../block.js'
import { executeBlock, type ExecutionMode } from '../execute.js'
import { fixtureFiles, prepareFixture } from '../fixture.js'
import type { BlockHashes, StateLike } from '../state.js'
import { verifyBlock, type Check, type ExpectedReceipt, type VerificationReport } from '../verify.js'
import { blockPaths } from './run.js'
import { UsageError } from './format.js'

// Colour only on a terminal (picocolors alone would also colour under CI=true, e.g. piped output).
const colour = (!!process.stdout.isTTY && !process.env.NO_COLOR && process.env.TERM !== 'dumb') || !!process.env.FORCE_COLOR
const pc = picocolors.createColors(colour)

/** One block to verify, with what verifyBlock needs. */
export type BlockToVerify = {
  block: BlockLike
  state: StateLike
  blockHashes?: BlockHashes
  chain?: ChainConfig
  /** The state is the chain's whole state before the block (state root is checked). */
  fullState?: boolean
  expectedReceipts?: readonly ExpectedReceipt[]
}

/** A block named for the output; loaded lazily so that a failure is reported against its name. */
export type VerifyItem = { label: string; load: () => Promise<BlockToVerify> }

export type VerifyOptions = {
  threads: number
  mode: ExecutionMode
  json: boolean
  crossCheck: boolean
  fullState: boolean
  prestate?: string
  receipts?: string
}

async function readReceipts(path: string): Promise<ExpectedReceipt[]> {
  const parsed = JSON.parse(await readFile(path, 'utf8')) as unknown
  // eth_getBlockReceipts returns an array; a saved JSON-RPC response wraps it in `result`.
  const list = Array.isArray(parsed) ? parsed : (parsed as { result?: unknown })?.result
  if (!Array.isArray(list)) throw new UsageError(`${path}: expected an array of receipts`)
  return list as ExpectedReceipt[]
}

/** Fixture folders (or a block.json): `receipts.json` beside a block is used as expected receipts. */
export function fixtureItems(paths: string[], options: Pick<VerifyOptions, 'prestate' | 'receipts' | 'fullState'>): VerifyItem[] {
  return paths.map((path) => ({
    label: path,
    load: async () => {
      const { block, state, dir } = await prepareFixture(path, { prestate: options.prestate, checkHeader: true })
      const receiptsFile = options.receipts ?? [join(dir, 'receipts.json')].find((p) => existsSync(p))
      return {
        block,
        state,
        fullState: options.fullState,
        expectedReceipts: receiptsFile ? await readReceipts(receiptsFile) : undefined,
      }
    },
  }))
}

type Outcome = { label: string; report?: VerificationReport; txs?: number; error?: { code: string; message: string } }

async function verifyItem(item: VerifyItem, options: VerifyOptions): Promise<Outcome> {
  try {
    const b = await item.load()
    const result = await executeBlock({ block: b.block, state: b.state, blockHashes: b.blockHashes, chain: b.chain, threads: options.threads, mode: options.mode })
    const report = await verifyBlock({
      block: b.block,
      result,
      state: b.state,
      blockHashes: b.blockHashes,
      chain: b.chain,
      fullState: b.fullState,
      expectedReceipts: b.expectedReceipts,
      crossCheck: options.crossCheck,
      threads: options.threads,
    })
    return { label: item.label, report, txs: result.receipts.length }
  } catch (e) {
    if (e instanceof UsageError) throw e
    const err = e as { code?: string; message: string; details?: string }
    return { label: item.label, error: { code: err.code ?? 'ERROR', message: err.details || err.message } }
  }
}

const shorten = (v: string | undefined) => (v === undefined ? '' : v.length > 26 ? `${v.slice(0, 14)}…${v.slice(-8)}` : v)

function colourStatus(s: Check['status']): string {
  return s === 'passed' ? pc.green('passed') : s === 'failed' ? pc.red(pc.bold('FAILED')) : pc.dim('n/a')
}

/** The checks of one block as aligned columns (padding computed before colouring). */
export function checkTable(checks: Check[]): string {
  const rows = checks.map((c) => {
    const where = c.location ?? (c.txIndex !== undefined ? `tx ${c.txIndex}` : '')
    return [c.name, c.status === 'not-applicable' ? 'n/a' : c.status === 'failed' ? 'FAILED' : 'passed', shorten(c.expected), shorten(c.actual), [where, c.note].filter(Boolean).join(': ')]
  })
  const header = ['check', 'status', 'expected', 'actual', 'note']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[], colour?: (i: number, text: string) => string) =>
    cells
      .map((c, i) => (colour ? colour(i, c.padEnd(widths[i]!)) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return ['  ' + pc.bold(line(header)), ...rows.map((r, k) => '  ' + line(r, (i, text) => (i === 1 ? text.replace(r[1]!, colourStatus(checks[k]!.status)) : text)))].join('\n')
}

function describe(o: Outcome): string {
  if (o.error) return `${pc.red('ERROR')} ${o.label}: ${o.error.code}: ${o.error.message}`
  const r = o.report!
  const verdict = r.passed ? pc.green('passed') : pc.red(pc.bold('FAILED'))
  return `block ${r.number} (${o.txs} txs) ${pc.dim(o.label)}: ${verdict}`
}

function toJson(o: Outcome): string {
  if (o.error) return JSON.stringify({ path: o.label, error: o.error.message, code: o.error.code })
  const r = o.report!
  return JSON.stringify({ path: o.label, number: Number(r.number), hash: r.hash, passed: r.passed, checks: r.checks })
}

/** Verifies every item; prints a table per block (or JSON lines) and a summary. Exit code: 0 or 1. */
export async function verifyItems(items: AsyncIterable<VerifyItem> | Iterable<VerifyItem>, total: number | undefined, options: VerifyOptions): Promise<number> {
  const bar =
    !options.json && (total ?? 2) > 1 && process.stderr.isTTY
      ? new cliProgress.SingleBar({ format: 'verify {bar} {value}/{total} {block}', clearOnComplete: true }, cliProgress.Presets.shades_classic)
      : undefined
  bar?.start(total ?? 0, 0, { block: '' })
  const failures: Outcome[] = []
  const deferred: string[] = []
  let count = 0
  for await (const item of items) {
    bar?.update({ block: item.label })
    const o = await verifyItem(item, options)
    count++
    if (o.error || !o.report!.passed) failures.push(o)
    if (options.json) console.log(toJson(o))
    else {
      // One line per passing block; the full table for a single block or a failure. Under the
      // progress bar only failures are printed, after it.
      const full = o.report && (total === 1 || !o.report.passed)
      const text = full ? `${describe(o)}\n${checkTable(o.report!.checks)}` : describe(o)
      if (!bar) console.log(text)
      else if (o.error || full) deferred.push(text)
    }
    bar?.update(count)
  }
  bar?.stop()
  for (const text of deferred) console.log(text)
  if (!options.json && count > 1) {
    const summary = `${count - failures.length}/${count} blocks passed`
    console.log(failures.length === 0 ? pc.green(summary) : pc.red(summary))
    for (const f of failures) {
      const failed = f.report?.checks.filter((c) => c.status === 'failed').map((c) => c.name) ?? [f.error!.code]
      console.log(`  ${f.report ? `block ${f.report.number}` : f.label}: ${failed.join(', ')}`)
    }
  }
  return failures.length === 0 ? 0 : 1
}

export async function verifyCommand(path: string, options: VerifyOptions): Promise<number> {
  const paths = blockPaths(path)
  if ((options.prestate || options.receipts) && paths.length > 1) throw new UsageError('--prestate and --receipts need a single block')
  if (paths.length === 1) fixtureFiles(paths[0]!, { prestate: options.prestate }) // usage errors before any work
  return verifyItems(fixtureItems(paths, options), paths.length, options)
}
