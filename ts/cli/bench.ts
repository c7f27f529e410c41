// `parallel-evm bench`: sequential vs parallel at several thread counts on blocks generated in
// code and, when present, the largest mainnet fixture blocks. Correctness is checked per block:
// every parallel output must equal the sequential one (and fixtures must match their header).
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import cliProgress from 'cli-progress'
import { Bench } from 'tinybench'
import { prepareBlock, type PreparedBlock } from '../block.js'
import { executeNative } from '../execute.js'
import { prepareFixture } from '../fixture.js'
import { generateBlock, type Workload } from '../generate.js'
import { headerChecks, sameOutcome } from '../result.js'
import { prepareState, type PreparedState } from '../state.js'
import { fmtGas, table, UsageError } from './format.js'

export type BenchOptions = { txs: number; threads: number[]; fixtures?: string; maxFixtures: number; time: number; json: boolean }

type Subject = { name: string; block: PreparedBlock; state: PreparedState; fromHeader: boolean }

/** Default fixture folder: `../shared/fixtures/mainnet` beside the package, or $PARALLEL_EVM_SHARED. */
export function defaultFixtures(): string | undefined {
  const shared = process.env.PARALLEL_EVM_SHARED ?? join(__dirname, '..', '..', '..', 'shared')
  const dir = join(shared, 'fixtures', 'mainnet')
  return existsSync(dir) ? dir : undefined
}

// The largest blocks (by block.json size, a proxy for transactions) are the interesting ones.
function largestFixtures(dir: string, count: number): string[] {
  return readdirSync(dir)
    .filter((d) => existsSync(join(dir, d, 'block.json')))
    .map((d) => ({ d: join(dir, d), size: statSync(join(dir, d, 'block.json')).size }))
    .sort((a, b) => b.size - a.size)
    .slice(0, count)
    .map((x) => x.d)
}

async function subjects(options: BenchOptions): Promise<Subject[]> {
  const out: Subject[] = []
  for (const workload of ['independent', 'hot-receiver', 'chain'] as Workload[]) {
    const g = await generateBlock(workload, options.txs)
    const [block, state] = await Promise.all([prepareBlock(g.block, { chain: g.chain }), prepareState(g.prestate)])
    out.push({ name: g.name, block, state, fromHeader: false })
  }
  const dir = options.fixtures ?? defaultFixtures()
  if (dir && options.maxFixtures > 0) {
    for (const d of largestFixtures(dir, options.maxFixtures)) {
      const f = await prepareFixture(d)
      out.push({ name: `mainnet ${f.block.number}`, block: f.block, state: f.state, fromHeader: true })
    }
  }
  return out
}

type Row = {
  block: string
  txs: number
  gas: number
  sequentialMs: number
  parallelMs: Record<string, number>
  bestSpeedup: number
  verified: boolean
}

export async function benchCommand(options: BenchOptions): Promise<number> {
  if (options.txs < 1 || options.txs > 1400) throw new UsageError('--txs must be from 1 to 1400 (a 30M gas block holds 1428 transfers)')
  const list = await subjects(options)
  const bench = new Bench({ time: options.time, iterations: 5, warmupIterations: 2 })
  const rows: Row[] = []
  let failed = 0
  for (const s of list) {
    // Correctness first: each configuration once, compared with sequential and the header.
    const seq = await executeNative({ block: s.block, state: s.state, threads: 1, mode: 'sequential' })
    let verified = true
    for (const t of options.threads) {
      const par = await executeNative({ block: s.block, state: s.state, threads: t, mode: 'parallel' })
      verified &&= sameOutcome(seq, par)
    }
    const summary = JSON.parse(seq.summary) as { gasUsed: string }
    const v = headerChecks(seq).verification
    verified &&= v.gasUsed && v.logsBloom && (!s.fromHeader || v.receiptsRoot !== false)
    if (!verified) failed++
    rows.push({ block: s.name, txs: s.block.txCount, gas: Number(BigInt(summary.gasUsed)), sequentialMs: 0, parallelMs: {}, bestSpeedup: 0, verified })
    bench.add(`${s.name}|seq`, () => executeNative({ block: s.block, state: s.state, threads: 1, mode: 'sequential' }).then(() => {}))
    for (const t of options.threads) {
      bench.add(`${s.name}|${t}`, () => executeNative({ block: s.block, state: s.state, threads: t, mode: 'parallel' }).then(() => {}))
    }
  }
  const bar = !options.json && process.stderr.isTTY ? new cliProgress.SingleBar({ format: 'bench {bar} {value}/{total} {task}', clearOnComplete: true }, cliProgress.Presets.shades_classic) : undefined
  bar?.start(bench.tasks.length, 0, { task: '' })
  bench.addEventListener('cycle', (e) => bar?.increment({ task: (e as unknown as { task: { name: string } }).task?.name ?? '' }))
  await bench.warmup()
  await bench.run()
  bar?.stop()
  for (const task of bench.tasks) {
    const [name, config] = task.name.split('|') as [string, string]
    const row = rows.find((r) => r.block === name)!
    // The fastest run, like the Rust replay example: the least disturbed by other load.
    const ms = task.result?.min ?? Number.NaN
    if (config === 'seq') row.sequentialMs = ms
    else row.parallelMs[config] = ms
  }
  for (const r of rows) r.bestSpeedup = r.sequentialMs / Math.min(...Object.values(r.parallelMs))

  if (options.json) {
    for (const r of rows) console.log(JSON.stringify(r))
  } else {
    const header = ['block', 'txs', 'gas', 'sequential ms', ...options.threads.map((t) => `parallel ${t}t ms`), 'best speedup', 'verified']
    console.log(
      table(
        header,
        rows.map((r) => [
          r.block,
          String(r.txs),
          fmtGas(r.gas),
          r.sequentialMs.toFixed(2),
          ...options.threads.map((t) => r.parallelMs[String(t)]!.toFixed(2)),
          `${r.bestSpeedup.toFixed(2)}x`,
          r.verified ? 'ok' : 'FAILED',
        ]),
      ),
    )
    console.log(`\nfastest of ≥5 runs per cell (ms); speedup = sequential / fastest parallel; "verified": every parallel run equals the sequential one (and, for mainnet blocks, the header's gasUsed, logsBloom and receiptsRoot).`)
  }
  return failed === 0 ? 0 : 1
}
