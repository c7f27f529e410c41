// The tracing section of docs/performance.md, from bench/trace-bar.cjs: traced execution on 2
// threads against sequential tracing and a node's in-order tracing, and what tracing leaves of
// untraced execution (before and after the change that added it).
import { missing, num, read, source, table, x2 } from './range-figures.js'

type TraceRow = {
  block: string
  tracer: string
  engine: string
  tracedSeqMs: number
  tracedParMs: number
  inOrderMs: number
  speedup: number
  speedupOverInOrder: number
  cpuSpeedupBound: number
  backToBack?: BackToBack | null
  untracedAfter: { seqMs: number; parMs: number }
  untracedAfterOverBefore?: { seq: number; par: number }
}

/** Traced runs back to back (`--streak` in a row), as a traced range replay runs blocks. */
export type BackToBack = { streak: number; tracedSeqMs: number; tracedParMs: number; speedup: number }

export function traceSection(resultsDir: string, root: string, from: string): string {
  const f = read(resultsDir, 'trace-bar')
  if (!f) return missing('trace-bar', 'node bench/trace-bar.cjs')
  const rows = f.rows.filter((r) => r.kind === 'trace') as unknown as TraceRow[]
  const streak = (rows.find((r) => r.backToBack)?.backToBack?.streak ?? 8).toString()
  const engine = (e: string) => e.replace(/^Some\((\w+)\)$/, '$1')
  return [
    table(
      [
        'block',
        'tracer',
        'engine',
        'sequential tracing ms',
        'in-order tracing ms',
        'traced, 2 threads ms',
        'speedup',
        'over in-order',
        'CPU bound',
        'back to back: sequential / 2 threads ms',
        'back-to-back speedup',
        'untraced ms (seq / 2 threads)',
        'untraced after / before (seq / 2 threads)',
      ],
      rows.map((r) => [
        r.block,
        r.tracer,
        engine(r.engine),
        num(r.tracedSeqMs, 2),
        num(r.inOrderMs, 2),
        num(r.tracedParMs, 2),
        `**${x2(r.speedup)}**`,
        x2(r.speedupOverInOrder),
        x2(r.cpuSpeedupBound),
        r.backToBack ? `${num(r.backToBack.tracedSeqMs, 2)} / ${num(r.backToBack.tracedParMs, 2)}` : '–',
        r.backToBack ? `**${x2(r.backToBack.speedup)}**` : '–',
        `${num(r.untracedAfter.seqMs, 2)} / ${num(r.untracedAfter.parMs, 2)}`,
        r.untracedAfterOverBefore ? `${num(r.untracedAfterOverBefore.seq, 2)} / ${num(r.untracedAfterOverBefore.par, 2)}` : '–',
      ]),
    ),
    '',
    `Medians over processes of each process's median. "Sequential tracing" is our sequential mode with the tracer (same receipts and diff); "in-order tracing" traces each transaction in turn as a node does, with no receipts or diff. "CPU bound" is 2 × CPU(sequential) / CPU(parallel): the speedup if the parallel run never idled. "Back to back" runs each mode ${streak} times in a row, as a traced range replay runs its blocks, one engine call after another; the other columns alternate the modes (and the untraced and in-order runs) every block.`,
    '',
    source(f, root, from),
  ].join('\n')
}
