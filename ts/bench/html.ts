// The `--html` report: one self-contained file (works offline) with chart.js's UMD bundle inlined
// from node_modules, the results as embedded JSON, and the charts drawn from them.
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { resolveOptional } from './optional.js'
import { seriesStyle } from './palette.js'
import type { BenchReport } from './report.js'

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
// Text inside <script> must not close the element early.
const scriptSafe = (s: string) => s.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--')

/** chart.js's browser bundle (MissingDependencyError when chart.js is not installed). */
export function chartJs(): string {
  const main = resolveOptional('chart.js', 'The HTML bench report', 'chart.js')
  return readFileSync(join(dirname(main), 'chart.umd.min.js'), 'utf8')
}

// Runs in the browser: draws the three charts from the embedded data. Every series of a chart
// gets its own look from STYLES (palette.ts): colour, and past twelve series a dash pattern and
// point style too, where chart.js's default palette repeats after seven.
const DRAW = `
const report = JSON.parse(document.getElementById('bench-data').textContent);
const rows = report.rows;
const threads = report.threads.map(String);
const line = (i) => ({ borderColor: STYLES[i].color, backgroundColor: STYLES[i].color, borderDash: STYLES[i].dash, pointStyle: STYLES[i].point, pointRadius: 4 });
const bar = (i) => ({ borderColor: STYLES[i].color, backgroundColor: STYLES[i].color });
new Chart(document.getElementById('speedup'), {
  type: 'line',
  data: { labels: threads.map((t) => t + ' threads'), datasets: rows.map((r, i) => ({ label: r.block, data: threads.map((t) => r.speedup[t]), ...line(i) })) },
  options: { plugins: { title: { display: true, text: 'Speedup over sequential (forced parallel)' } }, scales: { y: { beginAtZero: true, title: { display: true, text: 'x sequential' } } } },
});
const columns = ['sequential', ...threads, 'auto'];
const peer = rows.some((r) => r.peer && 'ms' in r.peer);
new Chart(document.getElementById('throughput'), {
  type: 'bar',
  data: {
    labels: rows.map((r) => r.block),
    datasets: [
      ...columns.map((c, i) => ({ label: c === 'sequential' || c === 'auto' ? c : c + ' threads', data: rows.map((r) => r.mgasPerSecond[c]), ...bar(i) })),
      ...(peer ? [{ label: '@ethereumjs/vm', data: rows.map((r) => (r.peer && 'ms' in r.peer ? r.peer.mgasPerSecond : null)), ...bar(columns.length) }] : []),
    ],
  },
  options: { plugins: { title: { display: true, text: 'Throughput (Mgas/s, log scale)' } }, scales: { y: { type: 'logarithmic', title: { display: true, text: 'Mgas/s' } } } },
});
new Chart(document.getElementById('reexecutions'), {
  type: 'bar',
  data: { labels: rows.map((r) => r.block), datasets: threads.map((t, i) => ({ label: t + ' threads', data: rows.map((r) => r.reexecutions[t]), ...bar(i) })) },
  options: { plugins: { title: { display: true, text: 'Re-executions (Block-STM aborts) per block' } }, scales: { y: { beginAtZero: true } } },
});
`

function resultsTable(report: BenchReport): string {
  const head = ['block', 'txs', 'gas', 'sequential ms', ...report.threads.map((t) => `${t}t ms`), 'best speedup', 'auto ms', 'auto speedup', '@ethereumjs/vm ms', 'verified']
  const body = report.rows.map((r) => {
    const peer = r.peer === undefined ? '' : 'ms' in r.peer ? `${r.peer.ms.toFixed(1)}${r.peer.gasMatches ? '' : ' (gas differs)'}` : `error: ${r.peer.error}`
    const cells = [
      r.block,
      String(r.txs),
      r.gas.toLocaleString('en-US'),
      r.sequentialMs.toFixed(2),
      ...report.threads.map((t) => r.parallelMs[String(t)]?.toFixed(2) ?? ''),
      `${r.bestSpeedup.toFixed(2)}x`,
      `${r.auto.ms.toFixed(2)} (${r.auto.ran}, ${r.auto.threads}t)`,
      `${r.auto.speedup.toFixed(2)}x`,
      peer,
      r.verified ? 'ok' : 'FAILED',
    ]
    return `<tr>${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`
  })
  return `<table><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${body.join('')}</tbody></table>`
}

/** One style per series the charts can have: a line per block, a bar per column (+ the peer). */
function styles(report: BenchReport) {
  const n = Math.max(report.rows.length, report.threads.length + 3)
  return Array.from({ length: n }, (_, i) => seriesStyle(i))
}

/** The report as one HTML document. */
export function renderHtml(report: BenchReport): string {
  const m = report.machine
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>parallel-evm bench ${escapeHtml(report.date)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
.chart { position: relative; height: 420px; margin-bottom: 2em; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
td:first-child, th:first-child { text-align: left; }
</style>
<script>${scriptSafe(chartJs())}</script>
</head>
<body>
<h1>parallel-evm bench</h1>
<p>${escapeHtml(report.date)} · ${m.cpus} CPUs (${escapeHtml(m.model)}) · ${m.memoryGiB} GiB · ${escapeHtml(m.platform)} · Node ${escapeHtml(m.node)}</p>
<p>Fastest run per cell. Speedup = sequential time / parallel time, both measured in this run.</p>
<div class="chart"><canvas id="speedup"></canvas></div>
<div class="chart"><canvas id="throughput"></canvas></div>
<div class="chart"><canvas id="reexecutions"></canvas></div>
<h2>Results</h2>
${resultsTable(report)}
<script type="application/json" id="bench-data">${JSON.stringify(report).replace(/</g, '\\u003c')}</script>
<script>Chart.defaults.maintainAspectRatio = false;const STYLES = ${JSON.stringify(styles(report))};${DRAW}</script>
</body>
</html>
`
}
