// `parallel-evm bench`: sequential vs parallel at several thread counts on generated
// ("gigagas"-style) blocks and, when present, the largest mainnet fixture blocks; optionally the
// same blocks through @ethereumjs/vm. Correctness is checked per block: every parallel output
// must equal the sequential one (and fixtures must match their header); the peer must agree on
// gas used. Output: a table, `--json` lines, and/or an `--html` report with charts.
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import cliProgress from 'cli-progress'
import { Bench } from 'tinybench'
import { prepareBlock, type ChainConfig, type PreparedBlock, type RpcBlock } from '../block.js'
import { executeNative } from '../execute.js'
import { loadFixture, prepareFixture } from '../fixture.js'
import type { Hash } from 'viem'
import { headerChecks, headerPassed, sameOutcome, type ExecutionStats } from '../result.js'
import { prepareState, type Prestate, type PreparedState } from '../state.js'
import { EthereumjsPeer, peerPackages } from '../bench/ethereumjs.js'
import { chartJs, renderHtml } from '../bench/html.js'
import { machine, mgasPerSecond, type BenchReport, type BenchRow, type PeerResult } from '../bench/report.js'
import { defaultResultsDir, resultsFile, writeResults } from '../bench/results.js'
import { cachedWorkload, WORKLOADS } from '../bench/workloads.js'
import { MissingDependencyError } from '../errors.js'
import type { GeneratedBlock } from '../generate.js'
import { fmtGas, table, UsageError } from './format.js'
import { checkWorkloads, fixtureName, writeFixture } from './generate.js'

export type BenchOptions = {
  txs: number
  seed: number
  /** Default: every workload whose optional packages are installed. */
  workloads?: string[]
  threads: number[]
  fixtures?: string
  maxFixtures: number
  time: number
  peer: boolean
  json: boolean
  html?: string
  saveBlocks?: string
  /** Folder for the raw results file (default: bench/results in a checkout); false: none. */
  results?: string | false
}

/** 1, 2, 4, 8 threads, and 16 on machines that have them. */
export function defaultThreads(): number[] {
  return availableParallelism() >= 16 ? [1, 2, 4, 8, 16] : [1, 2, 4, 8]
}

type Subject = {
  name: string
  workload?: string
  kind: BenchRow['kind']
  block: PreparedBlock
  state: PreparedState
  /** JSON inputs, for the peer (fixtures are read again only when the peer runs). */
  source: { block: RpcBlock; prestate: Prestate; chain?: ChainConfig; blockHashes?: Record<string, Hash> } | { dir: string }
}

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

async function subjects(options: BenchOptions, log: (s: string) => void): Promise<Subject[]> {
  const out: Subject[] = []
  for (const workload of checkWorkloads(options.workloads ?? [...WORKLOADS])) {
    log(`generating ${workload} ×${options.txs}`)
    let g: GeneratedBlock
    try {
      g = await cachedWorkload(workload, options.txs, options.seed)
    } catch (e) {
      // By default, a workload whose tools are not installed (an installed package has no dev
      // dependencies) is skipped with a notice; one asked for by name fails.
      if (options.workloads !== undefined || !(e instanceof MissingDependencyError)) throw e
      console.error(`parallel-evm: skipping the ${workload} workload: ${e.details}`)
      continue
    }
    // A fixture folder: the Rust replay example and bench/node-vs-replay.cjs take it as is.
    if (options.saveBlocks) writeFixture(join(options.saveBlocks, fixtureName(workload, options.txs, options.seed)), g)
    const [block, state] = await Promise.all([prepareBlock(g.block, { chain: g.chain }), prepareState(g.prestate)])
    out.push({ name: g.name, workload, kind: 'generated', block, state, source: { block: g.block, prestate: g.prestate, chain: g.chain } })
  }
  const dir = options.fixtures ?? defaultFixtures()
  if (dir && options.maxFixtures > 0) {
    for (const d of largestFixtures(dir, options.maxFixtures)) {
      const f = await prepareFixture(d)
      out.push({ name: `mainnet ${f.block.number}`, kind: 'mainnet', block: f.block, state: f.state, source: { dir: d } })
    }
  }
  return out
}

async function loadPeer(s: Subject): Promise<EthereumjsPeer> {
  const src = 'dir' in s.source ? await loadFixture(s.source.dir) : s.source
  return EthereumjsPeer.create({ block: src.block, prestate: src.prestate, chain: src.chain, blockHashes: src.blockHashes })
}

const statsOf = (summary: string) => JSON.parse(summary) as { gasUsed: string; stats: ExecutionStats }

export async function benchCommand(options: BenchOptions): Promise<number> {
  if (options.txs < 1 || options.txs > 100_000) throw new UsageError('--txs must be from 1 to 100000')
  // Missing tools fail before minutes of work, not after.
  if (options.peer) peerPackages()
  if (options.html) chartJs()
  const interactive = !options.json && process.stderr.isTTY
  const log = (s: string) => {
    if (interactive) process.stderr.write(`\r\x1b[K${s}`)
  }
  const list = await subjects(options, log)
  log('')
  const bench = new Bench({ time: options.time, iterations: 5, warmupIterations: 2 })
  // The peer is orders of magnitude slower: a fixed number of runs. Its first runs are several
  // times slower than later ones (JIT, state caches), hence two warm-up runs.
  const peerBench = new Bench({ time: 0, iterations: 3, warmupIterations: 2, warmupTime: 0 })
  const rows: BenchRow[] = []
  const peers = new Map<string, { gasUsed: bigint; failedTxs: number } | { error: string }>()
  let failed = 0
  for (const s of list) {
    log(`verifying ${s.name}`)
    // Correctness first: each configuration once, compared with sequential and the header.
    const seq = await executeNative({ block: s.block, state: s.state, threads: 1, mode: 'sequential' })
    let verified = true
    const reexecutions: Record<string, number> = {}
    for (const t of options.threads) {
      const par = await executeNative({ block: s.block, state: s.state, threads: t, mode: 'parallel' })
      verified &&= sameOutcome(seq, par)
      reexecutions[String(t)] = statsOf(par.summary).stats.reexecutions
    }
    // Auto mode at the largest thread count the machine runs at once.
    const autoThreads = Math.min(Math.max(...options.threads), availableParallelism())
    const auto = await executeNative({ block: s.block, state: s.state, threads: autoThreads, mode: 'auto' })
    verified &&= sameOutcome(seq, auto)
    const autoStats = statsOf(auto.summary).stats
    const gas = Number(BigInt(statsOf(seq.summary).gasUsed))
    const v = headerChecks(seq).verification
    // Generated blocks are sealed from a sequential run, so their header checks hold too.
    verified &&= headerPassed(v)
    if (!verified) failed++
    rows.push({
      block: s.name,
      ...(s.workload ? { workload: s.workload } : {}),
      kind: s.kind,
      txs: s.block.txCount,
      gas,
      sequentialMs: 0,
      parallelMs: {},
      speedup: {},
      bestSpeedup: 0,
      reexecutions,
      mgasPerSecond: {},
      auto: { threads: autoThreads, ms: 0, speedup: 0, ran: autoStats.mode, engine: autoStats.engine, reason: autoStats.reason },
      verified,
    })
    bench.add(`${s.name}|seq`, () => executeNative({ block: s.block, state: s.state, threads: 1, mode: 'sequential' }).then(() => {}))
    for (const t of options.threads) {
      bench.add(`${s.name}|${t}`, () => executeNative({ block: s.block, state: s.state, threads: t, mode: 'parallel' }).then(() => {}))
    }
    bench.add(`${s.name}|auto`, () => executeNative({ block: s.block, state: s.state, threads: autoThreads, mode: 'auto' }).then(() => {}))
    if (options.peer) {
      log(`loading ${s.name} into @ethereumjs/vm`)
      try {
        const peer = await loadPeer(s)
        peers.set(s.name, await peer.run())
        peerBench.add(`${s.name}|peer`, () => peer.run().then(() => {}))
      } catch (e) {
        // A block the peer cannot run is reported in its row, not fatal to the bench.
        if (e instanceof MissingDependencyError) throw e
        peers.set(s.name, { error: (e as Error).message.split('\n')[0]! })
      }
    }
  }
  log('')
  const bar = interactive ? new cliProgress.SingleBar({ format: 'bench {bar} {value}/{total} {task}', clearOnComplete: true }, cliProgress.Presets.shades_classic) : undefined
  bar?.start(bench.tasks.length + peerBench.tasks.length, 0, { task: '' })
  for (const b of [bench, peerBench]) {
    b.addEventListener('cycle', (e) => bar?.increment({ task: (e as unknown as { task: { name: string } }).task?.name ?? '' }))
    await b.warmup()
    await b.run()
  }
  bar?.stop()
  for (const task of [...bench.tasks, ...peerBench.tasks]) {
    const [name, config] = task.name.split('|') as [string, string]
    const row = rows.find((r) => r.block === name)!
    // The fastest run, like the Rust replay example: the least disturbed by other load.
    const ms = task.result?.min ?? Number.NaN
    if (config === 'seq') row.sequentialMs = ms
    else if (config === 'auto') row.auto.ms = ms
    else if (config === 'peer') {
      const run = peers.get(name) as { gasUsed: bigint; failedTxs: number }
      const best = Math.min(row.sequentialMs, row.auto.ms, ...Object.values(row.parallelMs))
      row.peer = {
        name: 'ethereumjs',
        ms,
        mgasPerSecond: mgasPerSecond(row.gas, ms),
        gasUsed: Number(run.gasUsed),
        gasMatches: Number(run.gasUsed) === row.gas,
        failedTxs: run.failedTxs,
        fasterThanPeer: ms / best,
      }
    } else row.parallelMs[config] = ms
  }
  for (const r of rows) {
    r.mgasPerSecond.sequential = mgasPerSecond(r.gas, r.sequentialMs)
    for (const [t, ms] of Object.entries(r.parallelMs)) {
      r.speedup[t] = r.sequentialMs / ms
      r.mgasPerSecond[t] = mgasPerSecond(r.gas, ms)
    }
    r.bestSpeedup = Math.max(...Object.values(r.speedup))
    r.auto.speedup = r.sequentialMs / r.auto.ms
    r.mgasPerSecond.auto = mgasPerSecond(r.gas, r.auto.ms)
    const p = peers.get(r.block)
    if (p && 'error' in p) r.peer = { name: 'ethereumjs', error: p.error }
  }
  const mismatches = rows.filter((r) => r.peer && 'gasMatches' in r.peer && !r.peer.gasMatches)
  for (const r of mismatches) {
    const p = r.peer as Extract<PeerResult, { gasMatches: boolean }>
    console.error(`parallel-evm: WARNING: @ethereumjs/vm used ${fmtGas(p.gasUsed)} gas on ${r.block}, parallel-evm ${fmtGas(r.gas)}`)
  }

  const report: BenchReport = { date: new Date().toISOString(), machine: machine(), threads: options.threads, rows }
  if (options.html) writeFileSync(options.html, renderHtml(report))
  const resultsDir = options.results === false ? undefined : (options.results ?? defaultResultsDir())
  const settings = {
    txs: options.txs,
    seed: options.seed,
    workloads: options.workloads ?? null,
    fixtures: options.fixtures ?? null,
    maxFixtures: options.maxFixtures,
    timeMs: options.time,
    peer: options.peer,
  }
  const saved = resultsDir ? writeResults(resultsDir, resultsFile('bench', options.threads, settings, rows)) : undefined
  if (options.json) {
    for (const r of rows) console.log(JSON.stringify(r))
  } else {
    const withPeer = options.peer
    const header = [
      'block',
      'txs',
      'gas',
      'seq ms',
      ...options.threads.map((t) => `${t}t ms`),
      'best speedup',
      'auto',
      'seq Mgas/s',
      'best Mgas/s',
      'reexec',
      ...(withPeer ? ['ethereumjs ms', 'vs ethereumjs'] : []),
      'verified',
    ]
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
          `${r.auto.speedup.toFixed(2)}x ${r.auto.ran === 'parallel' ? 'par' : 'seq'}`,
          r.mgasPerSecond.sequential!.toFixed(0),
          Math.max(...options.threads.map((t) => r.mgasPerSecond[String(t)]!)).toFixed(0),
          options.threads.map((t) => r.reexecutions[String(t)]).join('/'),
          ...(withPeer ? peerCells(r.peer) : []),
          r.verified ? 'ok' : 'FAILED',
        ]),
      ),
    )
    console.log(
      `\nfastest of ≥5 runs per cell (ms); speedup = sequential / fastest parallel; auto: sequential / auto mode at the largest thread count up to the cores (and what auto mode ran); reexec: re-executions per thread count; "verified": every parallel run equals the sequential one (and, for mainnet blocks, the header's gasUsed, logsBloom and receiptsRoot).` +
        (withPeer ? ` ethereumjs: fastest of 3 runs (after 2 warm-up runs) of every transaction through @ethereumjs/vm runTx; "vs ethereumjs": its time / parallel-evm's fastest.` : ''),
    )
    if (options.html) console.log(`HTML report: ${options.html}`)
    if (saved) console.log(`Raw results: ${saved}`)
  }
  return failed === 0 ? 0 : 1
}

function peerCells(p: PeerResult | undefined): string[] {
  if (!p) return ['', '']
  if ('error' in p) return ['error', p.error.slice(0, 40)]
  return [`${p.ms.toFixed(1)}${p.gasMatches ? '' : ' (gas differs)'}`, `${p.fasterThanPeer.toFixed(0)}x`]
}
