// The contended DEX section of docs/performance.md, from bench/contended-dex.cjs: blocks mined on
// anvil like today's contended mainnet blocks, each run sequentially, in auto mode and in forced
// parallel mode (medians of alternating rounds), with what auto mode chose.
import { missing, num, read, source, table, x2 } from './range-figures.js'

type DexRow = {
  block: number
  contention: number
  txs: number
  hotTxs: number
  reverted: number
  seqMs: number
  autoMs: number
  autoMode: string
  autoEngine: string
  autoReason: string | null
  autoReexecutions: number
  parMs: number
  parReexecutions: number
  autoSpeedup: number
  parSpeedup: number
  /** threads × CPU(sequential) / CPU(auto): auto mode's speedup with every thread on a free core. */
  autoCpuBound?: number
  verified: boolean
}

const geomean = (xs: number[]) => Math.exp(xs.reduce((s, v) => s + Math.log(v), 0) / xs.length)

export function contendedDexSection(resultsDir: string, root: string, from: string): string {
  const f = read(resultsDir, 'contended-dex')
  if (!f) return missing('contended-dex', 'npm run bench:dex')
  const rows = f.rows.filter((r) => r.kind === 'block') as unknown as DexRow[]
  const settings = (f as { settings?: { threads?: number; rounds?: number } }).settings ?? {}
  const slower = rows.filter((r) => r.autoSpeedup < 1)
  const summary = rows.length
    ? `Auto mode against sequential, geometric mean over the ${rows.length} blocks: **${x2(geomean(rows.map((r) => r.autoSpeedup)))}** (forced parallel ${x2(geomean(rows.map((r) => r.parSpeedup)))}); ` +
      `slower than sequential on ${slower.length} of ${rows.length}; ${rows.filter((r) => r.verified).length} of ${rows.length} blocks verified in every run (gas used, receipts root and logs bloom against anvil's header, auto and parallel against sequential).`
    : 'No blocks.'
  return [
    `${settings.threads ?? 2} threads; each time is the median of ${settings.rounds ?? '?'} rounds that rotate sequential, auto and forced parallel in one process.`,
    summary,
    '',
    table(
      [
        'block',
        'contention',
        'txs',
        'on hot pools',
        'reverted',
        'sequential ms',
        'auto mode ran',
        'auto ms',
        'auto speedup',
        'auto re-executions',
        'forced parallel ms',
        'forced parallel speedup',
        'forced re-executions',
      ],
      rows.map((r) => [
        String(r.block),
        num(r.contention, 2),
        String(r.txs),
        String(r.hotTxs),
        String(r.reverted),
        num(r.seqMs, 2),
        `${r.autoMode === 'sequential' ? 'sequential' : r.autoEngine}${r.autoReason ? ` (${r.autoReason})` : ''}`,
        num(r.autoMs, 2),
        `**${x2(r.autoSpeedup)}**`,
        String(r.autoReexecutions),
        x2(r.autoCpuBound),
        num(r.parMs, 2),
        x2(r.parSpeedup),
        String(r.parReexecutions),
      ]),
    ),
    '',
    '"Auto CPU bound" is threads × CPU(sequential) / CPU(auto), the CPU time of the whole process: the speedup auto mode would have with each thread on a free core (on a busy machine a parallel run also waits for cores).',
    '',
    source(f, root, from),
  ].join('\n')
}
