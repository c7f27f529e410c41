// The range sections of docs/performance.md: range replay behind a slow node
// (bench/replay-latency.cjs), blocks run back to back (bench/replay-batch.cjs) and backfills on
// several workers (bench/cluster-latency.cjs). Each bench writes one JSON file of rows under a
// fixed name; the tables are built from those rows only.
import { existsSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { mdTable } from './markdown.js'

type Row = Record<string, unknown> & { kind: string }
type RangeFile = { path: string; machine?: string; cpu?: string; commit?: string; date?: string; note?: string; rows: Row[] }

export function read(resultsDir: string, name: string): RangeFile | undefined {
  const path = join(resultsDir, `${name}.json`)
  if (!existsSync(path)) return undefined
  const f = JSON.parse(readFileSync(path, 'utf8')) as Omit<RangeFile, 'path'>
  return { ...f, path, rows: Array.isArray(f.rows) ? f.rows : [] }
}

/** A table of one label column and numeric columns after it. */
export const table = (header: string[], rows: string[][]): string =>
  mdTable(
    header,
    header.map((_, i) => (i === 0 ? 'l' : 'r')),
    rows,
  )

export const num = (v: unknown, digits = 1) => (typeof v === 'number' ? v.toFixed(digits) : '–')
export const x2 = (v: unknown) => (typeof v === 'number' ? `${v.toFixed(2)}x` : '–')

/** Where the numbers come from: file link, machine, commit, date, the note given when run. */
export function source(f: RangeFile, root: string, from: string): string {
  const rel = relative(root, f.path)
  const parts = [`[${rel}](${relative(from, rel) || rel})`, f.machine, f.cpu, f.commit && `commit ${f.commit.slice(0, 10)}`, f.date?.slice(0, 10)]
  return `Source: ${parts.filter(Boolean).join(', ')}${f.note ? ` (${f.note})` : ''}.`
}

export const missing = (name: string, command: string) => `_No \`${name}\` results: run \`${command}\`._`

/** `replay --state proofs` against the verification loop's way (`--prefetch 0 --no-carry`), the prefetch sweep and peak RSS. */
export function rangeReplaySection(resultsDir: string, root: string, from: string): string {
  const f = read(resultsDir, 'replay-latency')
  if (!f) return missing('replay-latency', 'npm run bench:replay')
  const out: string[] = []
  const lat = f.rows.filter((r) => r.kind === 'latency')
  const ratios = f.rows.filter((r) => r.kind === 'ratio')
  if (lat.length > 0) {
    out.push(
      table(
        ['latency per request', 'command', 'blocks', 'wall s', 'blocks/s', 'Mgas/s', 'RPC calls', 'verified'],
        lat.map((r) => [
          `${r.latencyMs} ms`,
          r.args ? `\`replay ${r.args}\`` : '`replay`',
          String(r.blocks),
          num(Number(r.wallMs) / 1000),
          num(r.blocksPerSecond),
          num(r.mgasPerSecond),
          String(r.rpcCalls),
          `${r.verified} of ${r.blocks}`,
        ]),
      ),
      '',
      ratios.map((r) => `At ${r.latencyMs} ms per request range replay is **${x2(r.speedup)}** faster with ${num(r.callsRatio, 3)} of the RPC calls.`).join(' '),
    )
  }
  const sweep = f.rows.filter((r) => r.kind === 'prefetch')
  if (sweep.length > 0) {
    out.push(
      '',
      'Prefetch window (blocks fetched ahead while one executes):',
      '',
      table(
        ['--prefetch', 'latency', 'blocks/s', 'RPC calls'],
        sweep.map((r) => [String(r.prefetch), `${r.latencyMs} ms`, num(r.blocksPerSecond), String(r.rpcCalls)]),
      ),
    )
  }
  const rssFile = read(resultsDir, 'replay-rss')
  const rss = (rssFile ?? f).rows.filter((r) => r.kind === 'rss')
  const rssRatio = (rssFile ?? f).rows.find((r) => r.kind === 'rss-ratio')
  if (rss.length > 0) {
    out.push(
      '',
      table(
        ['blocks replayed', 'peak RSS MiB'],
        rss.map((r) => [String(r.blocks), num(r.maxRssMiB)]),
      ),
    )
    if (rssRatio) out.push('', `Peak RSS of the longest replay over the shortest: ${num(rssRatio.ratio, 2)}.`)
  }
  out.push('', source(f, root, from), ...(rssFile ? [source(rssFile, root, from).replace('Source:', 'RSS:')] : []))
  const batch = read(resultsDir, 'replay-batch')
  if (batch) {
    const rows = batch.rows.filter((r) => r.kind === 'batch')
    if (rows.length > 0) {
      out.push(
        '',
        'Blocks run back to back in one engine call (`batchSize`, default) against one call per block (`batchSize: 1`), no latency:',
        '',
        table(
          ['source', 'one call per block, blocks/s', 'back to back, blocks/s', 'ratio'],
          rows.map((r) => [String(r.source), num(r.perBlockBlocksPerSecond), num(r.batchedBlocksPerSecond), x2(r.speedup)]),
        ),
        '',
        source(batch, root, from),
      )
    }
  }
  return out.join('\n')
}

/** `cluster work` with 1, 2, 3... workers behind a slow node. */
export function clusterSection(resultsDir: string, root: string, from: string): string {
  const f = read(resultsDir, 'cluster-latency')
  if (!f) return missing('cluster-latency', 'node bench/cluster-latency.cjs')
  const runs = f.rows.filter((r) => r.kind === 'cluster')
  const one = runs.find((r) => r.workers === 1)
  const rows = runs.map((r) => {
    const each = (r.runs as { machineBusy?: number }[] | undefined) ?? []
    const busy = each.map((x) => x.machineBusy).filter((b): b is number => typeof b === 'number')
    return [
      String(r.workers),
      `${r.latencyMs} ms`,
      `${r.blocks} (chunks of ${r.chunk}, ${r.state})`,
      num(Number(r.wallMs) / 1000),
      num(r.blocksPerSecond),
      one ? x2(Number(r.blocksPerSecond) / Number(one.blocksPerSecond)) : '–',
      busy.length ? `${Math.round((busy.reduce((a, b) => a + b, 0) / busy.length) * 100)}%` : '–',
    ]
  })
  return [table(['workers', 'latency per request', 'blocks', 'wall s (median)', 'blocks/s', 'vs one worker', 'machine busy'], rows), '', source(f, root, from)].join('\n')
}
