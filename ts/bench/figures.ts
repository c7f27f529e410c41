// `npm run bench:report`: the latest raw results under bench/results/ become the tables and charts
// of docs/performance.md and the README's headline table, between markers
// (`<!-- bench:NAME -->` ... `<!-- /bench:NAME -->`). No figure in the docs is typed by hand.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import type { RunLine } from '../cli/run.js'
import type { BenchRow } from './report.js'
import { mdTable } from './markdown.js'
import { clusterSection, rangeReplaySection, read as readFixed } from './range-figures.js'
import { contendedDexSection } from './dex-figures.js'
import { type BackToBack, traceSection } from './trace-figures.js'
import { latestResults, type ResultsFile } from './results.js'
import { barChartSvg } from './svg-chart.js'
import { WORKLOAD_DESCRIPTIONS, type BenchWorkload } from './workloads.js'

type Latest = Map<string, ResultsFile & { path: string }>

/** A line of the `mainnet` (executeBlock) or `replay` (Rust) suites: one block, one pass, one mode. */
export type FolderRow = { run: number; requestedMode: 'auto' | 'parallel'; requestedThreads: number } & (RunLine | { path?: string; number?: number; error: string; code?: string })

/** A line of the `napi` suite (bench/node-vs-replay.cjs). */
export type NapiRow = {
  name: string
  block: number
  txs: number
  threads: number
  mode: string
  replayMedianMs: number
  nodeMedianMs: number
  ratio: number
  bestRatio: number
  freshRatio: number
  nodeWithDecodingMedianMs: number
}

/** Blocks this small are left out of the mainnet summary: there is little to run in parallel. */
export const MIN_TXS = 100

const x2 = (v: number) => `${v.toFixed(2)}x`
const ms2 = (v: number) => v.toFixed(2)
const gasM = (gas: number) => `${(gas / 1e6).toFixed(1)}M`
const int = (n: number) => n.toLocaleString('en-US')

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

export function geomean(xs: number[]): number {
  return Math.exp(xs.reduce((s, v) => s + Math.log(v), 0) / xs.length)
}

type GoodRow = FolderRow & RunLine
const ok = (l: FolderRow): l is GoodRow => !('error' in l)
const verified = (l: GoodRow) => l.verified.matchesSequential && l.verified.gasUsed !== false && l.verified.receiptsRoot !== false && l.verified.logsBloom !== false

/** Where a results file is, as a markdown link from a document at `from` (a folder, relative to the repository root). */
const link = (file: { path: string }, root: string, from: string) => {
  const rel = relative(root, file.path)
  return `[${rel}](${relative(from, rel) || rel})`
}

const commitOf = (f: ResultsFile) => (f.commit ? `${f.commit.slice(0, 10)}${f.dirty ? ' (modified)' : ''}` : 'unknown')

function machineLine(f: ResultsFile): string {
  const m = f.machine
  return `${m.cpus} CPUs (${m.model}), ${m.memoryGiB} GiB, ${m.platform}, Node ${m.node}`
}

/** Per-block medians over the passes of one thread count: the summary of a folder run. */
export function folderSummary(file: ResultsFile, threads: number) {
  const lines = (file.rows as FolderRow[]).filter((l) => l.requestedThreads === threads)
  const good = lines.filter(ok)
  const blocks = new Map<number, { txs: number; gas: number; seqMs: number[]; auto: number[]; forced: number[]; autoRan: string[]; engine: string[] }>()
  for (const l of good) {
    const b = blocks.get(l.number) ?? { txs: l.txs, gas: l.gasUsed, seqMs: [], auto: [], forced: [], autoRan: [], engine: [] }
    b.seqMs.push(l.seqMs)
    if (l.requestedMode === 'auto') {
      b.auto.push(l.speedup)
      b.autoRan.push(l.mode)
      b.engine.push(l.engine)
    } else b.forced.push(l.speedup)
    blocks.set(l.number, b)
  }
  const perBlock = [...blocks.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([number, b]) => ({
      number,
      txs: b.txs,
      gas: b.gas,
      seqMs: median(b.seqMs),
      auto: b.auto.length ? median(b.auto) : null,
      forced: b.forced.length ? median(b.forced) : null,
      // What auto mode ran in most passes (ties: parallel).
      autoRan: b.autoRan.filter((m) => m === 'sequential').length > b.autoRan.length / 2 ? 'sequential' : 'parallel',
      engine: b.engine.sort((p, q) => b.engine.filter((e) => e === q).length - b.engine.filter((e) => e === p).length)[0] ?? '',
    }))
  const big = perBlock.filter((b) => b.txs >= MIN_TXS)
  const passes = [...new Set(good.map((l) => l.run))].sort((a, b) => a - b)
  const mode = (which: 'auto' | 'parallel') => {
    const key = which === 'auto' ? 'auto' : 'forced'
    const meds = big.map((b) => ({ number: b.number, v: b[key] })).filter((b): b is { number: number; v: number } => b.v !== null)
    if (meds.length === 0) return null
    const single = good.filter((l) => l.requestedMode === which && l.txs >= MIN_TXS)
    const perPass = passes
      .map((p) => single.filter((l) => l.run === p).map((l) => l.speedup))
      .filter((xs) => xs.length === meds.length)
      .map(geomean)
    const worst = meds.reduce((a, b) => (b.v < a.v ? b : a))
    const best = meds.reduce((a, b) => (b.v > a.v ? b : a))
    return { blocks: meds.length, geomean: geomean(meds.map((m) => m.v)), perPass, worst, best, below: single.filter((l) => l.speedup < 0.98).length, results: single.length }
  }
  return {
    threads,
    passes: passes.length,
    blocks: perBlock.length,
    verified: good.filter(verified).length,
    lines: lines.length,
    failed: lines.length - good.filter(verified).length,
    perBlock,
    big,
    auto: mode('auto'),
    forced: mode('parallel'),
  }
}

/** The folder suite the docs quote: executeBlock from Node (`mainnet`), else the Rust example (`replay`). */
function mainnetFile(latest: Latest) {
  return latest.get('mainnet') ?? latest.get('replay')
}

/** The workload of a generated bench row. */
const workloadOf = (r: BenchRow) => (r.workload ?? r.block.split(' ')[0]) as BenchWorkload

const ENGINE: Record<string, string> = { sequential: 'sequential', blockStm: 'Block-STM', transferGroups: 'transfer groups', guessedGroups: 'guessed groups' }

/** The thread count the headline quotes: the most threads measured that the machine runs at once. */
function headlineThreads(f: ResultsFile): number {
  const fitting = f.threads.filter((t) => t <= f.machine.cpus)
  return fitting.length ? Math.max(...fitting) : Math.min(...f.threads)
}

/** The README's second table: ranges, workers and traces, from the fixed-name results files. */
export function beyondOneBlock(resultsDir: string): string {
  const rows: string[][] = []
  const latency = readFixed(resultsDir, 'replay-latency')
  const far = latency?.rows.filter((r) => r.kind === 'ratio').sort((a, b) => Number(b.latencyMs) - Number(a.latencyMs))[0]
  if (far)
    rows.push([
      `range replay (\`replay --state proofs\`) against fetching each block's whole state in turn, ${latency!.rows.find((r) => r.kind === 'latency')?.blocks} blocks, ${far.latencyMs} ms per request`,
      `${x2(Number(far.speedup))} faster, ${Number(far.callsRatio).toFixed(2)} of the RPC calls`,
    ])
  const cluster = readFixed(resultsDir, 'cluster-latency')
  const runs = cluster?.rows.filter((r) => r.kind === 'cluster') ?? []
  const one = runs.find((r) => r.workers === 1)
  for (const r of runs.filter((r) => Number(r.workers) > 1 && one)) {
    rows.push([
      `backfill (\`cluster work\`), ${r.workers} workers against one, ${r.blocks} blocks, ${r.latencyMs} ms per request`,
      `${x2(Number(r.blocksPerSecond) / Number(one!.blocksPerSecond))} the blocks/s (${Number(r.blocksPerSecond).toFixed(1)} against ${Number(one!.blocksPerSecond).toFixed(1)})`,
    ])
  }
  const trace = readFixed(resultsDir, 'trace-bar')
  for (const r of trace?.rows.filter((r) => r.kind === 'trace') ?? []) {
    // One block at a time (alternating with other runs), and back to back as a traced range runs.
    const b2b = r.backToBack as BackToBack | null | undefined
    rows.push([
      `\`${r.tracer}\` traces of generated block ${r.block}, 2 threads against sequential tracing`,
      `${x2(Number(r.speedup))} faster one block at a time${b2b ? `, ${x2(b2b.speedup)} back to back` : ''}`,
    ])
  }
  if (rows.length === 0) return '_No range, cluster or trace results yet: see docs/performance.md for the benches._'
  return [mdTable(['beyond one block', 'measured'], ['l', 'l'], rows), '', 'How each is measured, and the conditions: [docs/performance.md](docs/performance.md).'].join('\n')
}

/** The README's headline table (also at the top of docs/performance.md). */
export function headline(latest: Latest, from: string): string {
  const out: string[] = []
  const rows: string[][] = []
  const sources: string[] = []
  const mainnet = mainnetFile(latest)
  if (mainnet) {
    const t = headlineThreads(mainnet)
    const s = folderSummary(mainnet, t)
    if (s.auto && s.forced) {
      rows.push([`${s.auto.blocks} mainnet blocks of ≥ ${MIN_TXS} transactions (geometric mean)`, `${t}`, 'per block', x2(s.auto.geomean), x2(s.forced.geomean), ''])
      const worst = s.big.find((b) => b.number === s.auto!.worst.number)!
      rows.push([`mainnet block ${worst.number}, the slowest in auto mode`, `${t}`, worst.autoRan, x2(s.auto.worst.v), worst.forced === null ? '' : x2(worst.forced), ''])
    }
    sources.push(
      `mainnet blocks: the \`${mainnet.suite}\` suite (${mainnet.suite === 'mainnet' ? 'executeBlock from Node' : 'the Rust replay example'}, medians of ${s.passes} passes, commit ${commitOf(mainnet)})`,
    )
  }
  const bench = latest.get('bench')
  if (bench) {
    for (const r of bench.rows as BenchRow[]) {
      if (r.kind !== 'generated') continue
      const t = String(r.auto.threads)
      const forced = r.speedup[t] ?? r.bestSpeedup
      const peer = r.peer && 'fasterThanPeer' in r.peer ? `${int(Math.round(r.peer.fasterThanPeer))}x` : ''
      const ran = r.auto.ran === 'sequential' ? 'sequential' : (ENGINE[r.auto.engine ?? ''] ?? 'parallel')
      rows.push([`${WORKLOAD_DESCRIPTIONS[workloadOf(r)] ?? r.block}, ${int(r.txs)} transactions`, t, ran, x2(r.auto.speedup), x2(forced), peer])
    }
    sources.push(`generated blocks: the \`bench\` suite (fastest of ≥ 5 runs per cell, commit ${commitOf(bench)})`)
  }
  if (rows.length === 0) return '_No benchmark results yet: run the benchmarks (docs/performance.md says how), then `npm run bench:report`._'
  const m = (mainnet ?? bench)!
  out.push(`Speedup = sequential time / time on the given threads, both measured in the same process on ${machineLine(m)}.`)
  // What the person who ran the benchmarks noted about the machine (e.g. that it was shared).
  const notes = [...new Set([mainnet, bench].map((f) => f?.note).filter((n): n is string => !!n))]
  if (notes.length) out.push(`Conditions noted with the results: ${notes.join('; ')}.`)
  out.push('Auto mode (the default) runs a block sequentially where parallelism would not pay; forced parallel always runs it in parallel.')
  out.push('')
  out.push(mdTable(['blocks', 'threads', 'auto mode ran', 'auto mode', 'forced parallel', 'vs @ethereumjs/vm'], ['l', 'r', 'l', 'r', 'r', 'r'], rows))
  out.push('')
  // No file names here: they carry the date, and the README has none. performance.md's
  // conditions table links the files.
  out.push(`From the newest results under bench/results/: ${sources.join('; ')}. Files and conditions: [performance.md](${relative(from, 'docs/performance.md')}#conditions).`)
  return out.join('\n')
}

/** Which runs the figures come from, and on what. */
export function conditions(latest: Latest, root: string, from: string): string {
  const files = [...latest.values()].sort((a, b) => a.suite.localeCompare(b.suite))
  if (files.length === 0) return '_No results under bench/results/ yet._'
  return mdTable(
    ['suite', 'file', 'commit', 'machine', 'threads', 'load average at the end (1, 5, 15 min)', 'note'],
    ['l', 'l', 'l', 'l', 'l', 'l', 'l'],
    files.map((f) => [`\`${f.suite}\``, link(f, root, from), commitOf(f), machineLine(f), f.threads.join(', '), f.machine.loadAverage.join(', '), f.note ?? '']),
  )
}

/** Summary of the mainnet folder, per suite and thread count. */
export function mainnetSummary(latest: Latest): string {
  const files = ['mainnet', 'replay'].map((s) => latest.get(s)).filter((f) => f !== undefined)
  if (files.length === 0) return '_No `mainnet` or `replay` results: run `npm run bench:suite -- mainnet replay`._'
  const rows: string[][] = []
  const intro: string[] = []
  for (const f of files) {
    const st = f.settings as { runs?: number; repeat?: number; rounds?: number; minTimeMs?: number; minMs?: number }
    const s0 = folderSummary(f, f.threads[0]!)
    intro.push(
      `${f.suite === 'mainnet' ? '`executeBlock` from Node' : 'The Rust `replay` example'}: ${s0.passes} passes over ${s0.blocks} blocks (${s0.big.length} of them with ≥ ${MIN_TXS} transactions); ` +
        `each block timed against sequential over ≥ ${st.repeat ?? st.rounds} alternating rounds and ≥ ${st.minTimeMs ?? st.minMs} ms of sequential time, best of each side.`,
    )
    for (const t of f.threads) {
      const s = folderSummary(f, t)
      const via = f.suite === 'mainnet' ? 'executeBlock (Node)' : 'Rust replay'
      for (const [name, m] of [
        ['auto', s.auto],
        ['forced parallel', s.forced],
      ] as const) {
        if (!m) continue
        rows.push([
          via,
          String(t),
          name,
          `**${x2(m.geomean)}**`,
          m.perPass.map(x2).join(', '),
          `${x2(m.worst.v)} (${m.worst.number})`,
          `${x2(m.best.v)} (${m.best.number})`,
          `${m.below} of ${m.results}`,
          `${s.verified} of ${s.lines}`,
        ])
      }
    }
  }
  return `${intro.join('\n')}\n\n${mdTable(
    [
      'measured with',
      'threads',
      'mode',
      `geometric mean of per-block medians (blocks of ≥ ${MIN_TXS} txs)`,
      'geometric mean of each pass',
      'worst block (median)',
      'best block (median)',
      'single results below 0.98x',
      'runs verified (all blocks)',
    ],
    ['l', 'r', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
    rows,
  )}`
}

/** Every block of the mainnet folder run (first thread count): medians over the passes. */
export function mainnetBlocks(latest: Latest): string {
  const f = mainnetFile(latest)
  if (!f) return '_No `mainnet` or `replay` results._'
  const s = folderSummary(f, headlineThreads(f))
  const rows = s.big.map((b) => [
    String(b.number),
    int(b.txs),
    gasM(b.gas),
    ms2(b.seqMs),
    b.autoRan,
    ENGINE[b.engine] ?? b.engine,
    b.auto === null ? '' : x2(b.auto),
    b.forced === null ? '' : x2(b.forced),
  ])
  return [
    `<details><summary>Per block: the ${s.big.length} blocks of ≥ ${MIN_TXS} transactions, ${s.threads} threads, medians of ${s.passes} passes</summary>`,
    '',
    mdTable(['block', 'txs', 'gas', 'sequential ms', 'auto mode ran', 'engine', 'auto speedup', 'forced parallel speedup'], ['r', 'r', 'r', 'r', 'l', 'l', 'r', 'r'], rows),
    '',
    '</details>',
  ].join('\n')
}

/** A line of the `witness` suite: the replay example's line, with the medians of its rounds. */
export type WitnessRow = FolderRow & WitnessMedians
type WitnessMedians = { seqMedianMs?: number; parMedianMs?: number; validationAborts?: number }

/** A line of the `plain-loop` suite (the `plain_loop` example): one block, both sides' medians. */
export type PlainLoopRow =
  | { number: number; txs: number; gasUsed: number; witness: boolean; mode?: string; rounds: number; plainMs: number; sequentialMs: number; ratioOfMedians: number; ratio: number }
  | { path: string; error: string }

const plainOk = (r: PlainLoopRow): r is Extract<PlainLoopRow, { ratio: number }> => !('error' in r)

/** What auto mode ran: `sequential`, or the parallel engine. */
const ranLabel = (mode: string, engine: string) => (mode === 'sequential' ? 'sequential' : (ENGINE[engine] ?? engine))

/** The most frequent value (ties: the first seen). */
function mostCommon<T>(xs: T[]): T | undefined {
  return xs.reduce<{ v?: T; n: number }>(
    (best, x) => {
      const n = xs.filter((y) => y === x).length
      return n > best.n ? { v: x, n } : best
    },
    { n: 0 },
  ).v
}

/** The mainnet-witness blocks (their witness state): per block, auto mode's choice and the medians over the passes. */
export function witnessBlocks(latest: Latest): string {
  const f = latest.get('witness')
  if (!f) return '_No `witness` results: run `npm run bench:suite -- witness --threads 2 --runs 3`._'
  const t = headlineThreads(f)
  const lines = (f.rows as WitnessRow[]).filter((l) => l.requestedThreads === t)
  const good = lines.filter(ok) as (GoodRow & WitnessMedians)[]
  const numbers = [...new Set(good.map((l) => l.number))].sort((a, b) => a - b)
  const plain = latest.get('plain-loop')
  const plainRows = plain ? (plain.rows as PlainLoopRow[]).filter(plainOk).filter((r) => r.witness) : []
  const speedup = (l: GoodRow & WitnessMedians) => (l.seqMedianMs && l.parMedianMs ? l.seqMedianMs / l.parMedianMs : l.speedup)
  const autos: number[] = []
  const forceds: number[] = []
  const rows = numbers.map((n) => {
    const auto = good.filter((l) => l.number === n && l.requestedMode === 'auto')
    const forced = good.filter((l) => l.number === n && l.requestedMode === 'parallel')
    const first = (auto[0] ?? forced[0])!
    const a = auto.length ? median(auto.map(speedup)) : null
    const p = forced.length ? median(forced.map(speedup)) : null
    if (a !== null) autos.push(a)
    if (p !== null) forceds.push(p)
    const pl = plainRows.find((r) => r.number === n)
    return [
      String(n),
      int(first.txs),
      gasM(first.gasUsed),
      ms2(median([...auto, ...forced].map((l) => l.seqMedianMs ?? l.seqMs))),
      auto.length ? ranLabel(mostCommon(auto.map((l) => l.mode))!, mostCommon(auto.map((l) => l.engine))!) : '',
      auto.length ? (mostCommon(auto.map((l) => l.reason ?? '')) ?? '') : '',
      auto.length ? String(median(auto.map((l) => l.reexecutions))) : '',
      auto.length ? ms2(median(auto.map((l) => l.parMedianMs ?? l.parMs))) : '',
      a === null ? '' : x2(a),
      forced.length ? ms2(median(forced.map((l) => l.parMedianMs ?? l.parMs))) : '',
      p === null ? '' : x2(p),
      forced.length ? String(median(forced.map((l) => l.reexecutions))) : '',
      ...(plain ? [pl ? x2(pl.ratio) : ''] : []),
    ]
  })
  const st = f.settings as { runs?: number; rounds?: number; minMs?: number }
  const passes = new Set(good.map((l) => l.run)).size
  const summary =
    autos.length > 0
      ? `Geometric mean over the ${autos.length} blocks: auto mode **${x2(geomean(autos))}**` +
        `${forceds.length ? `, forced parallel ${x2(geomean(forceds))}` : ''}; ${good.filter(verified).length} of ${lines.length} runs verified (gas used, receipts root, logs bloom and post-state root against the header, parallel against sequential).`
      : `${good.filter(verified).length} of ${lines.length} runs verified.`
  return [
    `The Rust \`replay\` example on each block's witness state, ${t} threads: ${passes} passes, each block timed against sequential over ≥ ${st.rounds} alternating rounds and ≥ ${st.minMs} ms of sequential time; ` +
      `speedups are ratios of the medians of the rounds, then the median over the passes (re-executions too).`,
    summary,
    '',
    mdTable(
      [
        'block',
        'txs',
        'gas',
        'sequential ms',
        'auto mode ran',
        'why sequential',
        'auto re-executions',
        'auto ms',
        'auto speedup',
        'forced parallel ms',
        'forced parallel speedup',
        'forced re-executions',
        ...(plain ? ['sequential / plain revm loop'] : []),
      ],
      ['r', 'r', 'r', 'r', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', ...(plain ? (['r'] as const) : [])],
      rows,
    ),
  ].join('\n')
}

/** Our sequential engine against a plain revm loop (the `plain_loop` example), same process, same build. */
export function plainLoopTable(latest: Latest): string {
  const f = latest.get('plain-loop')
  if (!f) return '_No `plain-loop` results: run `npm run bench:suite -- plain-loop`._'
  const rows = (f.rows as PlainLoopRow[]).filter(plainOk)
  const failed = f.rows.length - rows.length
  const big = rows.filter((r) => !r.witness && r.txs >= MIN_TXS)
  const witness = rows.filter((r) => r.witness)
  const st = f.settings as { rounds?: number; minMs?: number }
  const gm = (xs: typeof rows) => (xs.length ? x2(geomean(xs.map((r) => r.ratio))) : 'none')
  const table = mdTable(
    ['block', 'txs', 'gas', 'state', 'plain loop ms', 'sequential engine ms', 'ratio'],
    ['r', 'r', 'r', 'l', 'r', 'r', 'r'],
    [...big, ...witness].map((r) => [String(r.number), int(r.txs), gasM(r.gasUsed), r.witness ? 'witness' : 'prestate', ms2(r.plainMs), ms2(r.sequentialMs), x2(r.ratio)]),
  )
  return [
    `Time of our sequential engine (\`execute_block\`, mode sequential) over the time of a plain revm loop on the same block, same pre-state, same build and allocator, alternating in one process; ` +
      `per block the median of ≥ ${st.rounds} rounds' ratios (≥ ${st.minMs} ms of plain-loop time).`,
    '',
    mdTable(
      ['blocks', 'geometric mean of the ratio'],
      ['l', 'r'],
      [
        [`the ${big.length} mainnet blocks of ≥ ${MIN_TXS} transactions`, `**${gm(big)}**`],
        [`the ${witness.length} mainnet-witness blocks (witness state)`, gm(witness)],
        [`all ${rows.length} blocks`, gm(rows)],
      ],
    ),
    ...(failed > 0 ? ['', `${failed} block(s) failed (see the results file).`] : []),
    '',
    `<details><summary>Per block</summary>`,
    '',
    table,
    '',
    '</details>',
  ].join('\n')
}

/** The CLI bench's table: generated blocks and the largest mainnet blocks. */
export function generatedTable(latest: Latest): string {
  const f = latest.get('bench')
  if (!f) return '_No `bench` results: run `npm run bench`._'
  const rows = f.rows as BenchRow[]
  const peer = rows.some((r) => r.peer && 'ms' in r.peer)
  const body = rows.map((r) => {
    const p = r.peer
    return [
      r.block,
      int(r.txs),
      gasM(r.gas),
      ms2(r.sequentialMs),
      ...f.threads.map((t) => (r.speedup[String(t)] === undefined ? '' : x2(r.speedup[String(t)]!))),
      `${x2(r.auto.speedup)} (${r.auto.ran === 'sequential' ? 'sequential' : (ENGINE[r.auto.engine ?? ''] ?? 'parallel')})`,
      (r.mgasPerSecond.sequential ?? 0).toFixed(0),
      (r.mgasPerSecond.auto ?? 0).toFixed(0),
      f.threads.map((t) => r.reexecutions[String(t)] ?? '').join(' / '),
      ...(peer ? [p && 'ms' in p ? `${int(Math.round(p.ms))}${p.gasMatches ? '' : ' (gas differs)'}` : p && 'error' in p ? 'error' : ''] : []),
      r.verified ? 'yes' : '**no**',
    ]
  })
  const st = f.settings as { txs?: number; seed?: number; timeMs?: number }
  const autoThreads = rows[0]?.auto.threads
  const intro =
    `${st.txs === undefined ? '' : `${int(st.txs)} transactions per generated block (seed ${st.seed}); `}` +
    `fastest of ≥ 5 runs${st.timeMs === undefined ? '' : ` and ${int(st.timeMs)} ms`} per cell; speedups per thread count are forced parallel; auto mode ran at ${autoThreads} thread${autoThreads === 1 ? '' : 's'}.`
  const header = [
    'block',
    'txs',
    'gas',
    'sequential ms',
    ...f.threads.map((t) => `${t} thread${t === 1 ? '' : 's'}`),
    'auto mode (ran)',
    'sequential Mgas/s',
    'auto Mgas/s',
    're-executions',
    ...(peer ? ['@ethereumjs/vm ms'] : []),
    'verified',
  ]
  return `${intro}\n\n${mdTable(
    header,
    header.map((_, i) => (i === 0 || i === header.length - 1 ? 'l' : 'r')),
    body,
  )}`
}

/** executeBlock from Node against the Rust replay example on the same blocks. */
export function napiTable(latest: Latest): string {
  const f = latest.get('napi')
  if (!f) return '_No `napi` results: run `npm run bench:suite -- napi`._'
  const rows = (f.rows as NapiRow[]).map((r) => [
    r.name,
    int(r.txs),
    `${r.threads} / ${r.mode}`,
    r.replayMedianMs.toFixed(3),
    r.nodeMedianMs.toFixed(3),
    x2(r.ratio),
    x2(r.bestRatio),
    x2(r.freshRatio),
    r.nodeWithDecodingMedianMs.toFixed(2),
  ])
  return mdTable(
    [
      'block',
      'txs',
      'threads / mode',
      'replay median ms',
      'executeBlock median ms',
      'ratio',
      'ratio of best times',
      'ratio in a fresh process',
      'executeBlock + decoding every receipt and diff entry, ms',
    ],
    ['l', 'r', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
    rows,
  )
}

/** The charts (SVG files, relative to the figures folder) and their markdown. */
export function charts(latest: Latest, figuresLink: string): { files: Record<string, string>; markdown: string } {
  const files: Record<string, string> = {}
  const md: string[] = []
  const bench = latest.get('bench')
  if (bench) {
    const rows = bench.rows as BenchRow[]
    files['bench-speedup.svg'] = barChartSvg({
      title: 'Speedup over sequential, by block and thread count',
      categories: rows.map((r) => r.block),
      series: [
        ...bench.threads.map((t) => ({ name: `${t} thread${t === 1 ? '' : 's'}`, values: rows.map((r) => r.speedup[String(t)] ?? null) })),
        { name: 'auto mode', values: rows.map((r) => r.auto.speedup) },
      ],
      axis: 'x sequential (dashed: as fast as sequential)',
      reference: 1,
    })
    md.push(`![Speedup over sequential by block and thread count](${figuresLink}/bench-speedup.svg)`)
  }
  const mainnet = mainnetFile(latest)
  if (mainnet) {
    const s = folderSummary(mainnet, headlineThreads(mainnet))
    files['mainnet-speedup.svg'] = barChartSvg({
      title: `Mainnet blocks of ≥ ${MIN_TXS} transactions, ${s.threads} threads (median of ${s.passes} passes)`,
      categories: s.big.map((b) => `${b.number} (${b.txs} txs)`),
      series: [
        { name: 'auto mode', values: s.big.map((b) => b.auto) },
        { name: 'forced parallel', values: s.big.map((b) => b.forced) },
      ],
      axis: 'x sequential (dashed: as fast as sequential)',
      reference: 1,
    })
    md.push(`![Speedup of each mainnet block](${figuresLink}/mainnet-speedup.svg)`)
  }
  return { files, markdown: md.length ? md.join('\n\n') : '_No results to chart yet._' }
}

/** Replaces what is between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` (markers kept). */
export function replaceSection(text: string, name: string, content: string): string {
  const open = `<!-- bench:${name} -->`
  const close = `<!-- /bench:${name} -->`
  const start = text.indexOf(open)
  const end = text.indexOf(close)
  if (start < 0 || end < start) throw new Error(`markers ${open} ... ${close} not found`)
  return `${text.slice(0, start + open.length)}\n${content}\n${text.slice(end)}`
}

export type UpdateDocsParameters = {
  /** Repository root: paths in the docs are relative to it. */
  root: string
  /** Default: <root>/bench/results. */
  resultsDir?: string
  /** Default: <root>/README.md. */
  readme?: string
  /** Default: <root>/docs/performance.md. */
  performance?: string
  /** Default: <root>/docs/figures. */
  figuresDir?: string
}

/** Regenerates every figure of the docs from the latest results; returns the files written. */
export function updateDocs(params: UpdateDocsParameters): string[] {
  const { root } = params
  const resultsDir = params.resultsDir ?? join(root, 'bench', 'results')
  const readme = params.readme ?? join(root, 'README.md')
  const performance = params.performance ?? join(root, 'docs', 'performance.md')
  const figuresDir = params.figuresDir ?? join(root, 'docs', 'figures')
  const latest = latestResults(resultsDir)
  const written: string[] = []
  const readmeFrom = relative(root, join(readme, '..'))
  const perfFrom = relative(root, join(performance, '..'))
  const update = (path: string, sections: Record<string, string>) => {
    let text = readFileSync(path, 'utf8')
    for (const [name, content] of Object.entries(sections)) text = replaceSection(text, name, content)
    writeFileSync(path, text)
    written.push(path)
  }
  update(readme, { headline: headline(latest, readmeFrom), beyond: beyondOneBlock(resultsDir) })
  const chart = charts(latest, relative(join(performance, '..'), figuresDir) || '.')
  update(performance, {
    headline: headline(latest, perfFrom),
    conditions: conditions(latest, root, perfFrom),
    mainnet: mainnetSummary(latest),
    'mainnet-blocks': mainnetBlocks(latest),
    generated: generatedTable(latest),
    napi: napiTable(latest),
    witness: witnessBlocks(latest),
    'plain-loop': plainLoopTable(latest),
    'range-replay': rangeReplaySection(resultsDir, root, perfFrom),
    cluster: clusterSection(resultsDir, root, perfFrom),
    trace: traceSection(resultsDir, root, perfFrom),
    'contended-dex': contendedDexSection(resultsDir, root, perfFrom),
    charts: chart.markdown,
  })
  mkdirSync(figuresDir, { recursive: true })
  for (const [name, svg] of Object.entries(chart.files)) {
    const path = join(figuresDir, name)
    writeFileSync(path, svg)
    written.push(path)
  }
  return written
}
