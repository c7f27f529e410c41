// A horizontal grouped bar chart as a standalone SVG, for the docs (GitHub renders SVG images;
// markdown has no charts). Deterministic output: the same data gives the same bytes.
import { seriesStyle } from './palette.js'

export type BarSeries = { name: string; values: (number | null)[] }

export type BarChart = {
  title: string
  /** One group of bars per category, top to bottom. */
  categories: string[]
  series: BarSeries[]
  /** Axis label, e.g. `speedup over sequential (x)`. */
  axis: string
  /** A dashed vertical line at this value (e.g. 1 for "as fast as sequential"). */
  reference?: number
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
const fmt = (x: number) => (Math.round(x * 10) / 10).toString()

/** Ticks at a round step covering [0, max]. */
function ticks(max: number): number[] {
  const raw = max / 5
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw
  const out: number[] = []
  for (let t = 0; t <= max + step / 2; t += step) out.push(Math.round(t * 1e6) / 1e6)
  return out
}

export function barChartSvg(chart: BarChart): string {
  const bar = 12
  const gap = 10
  const labelWidth = Math.max(120, 7 * Math.max(...chart.categories.map((c) => c.length)))
  const plotWidth = 520
  const top = 40
  const groupHeight = chart.series.length * bar + gap
  const plotHeight = chart.categories.length * groupHeight
  const legendTop = top + plotHeight + 56
  const legendRows = Math.ceil(chart.series.length / 4)
  const width = labelWidth + plotWidth + 60
  const height = legendTop + legendRows * 20 + 10
  const values = chart.series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)))
  const axisTicks = ticks(Math.max(chart.reference ?? 0, ...values, 1e-9) * 1.05)
  const max = axisTicks.at(-1)!
  const x = (v: number) => labelWidth + (v / max) * plotWidth
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(chart.title)}</text>`,
  ]
  for (const t of axisTicks) {
    out.push(`<line x1="${x(t)}" y1="${top}" x2="${x(t)}" y2="${top + plotHeight}" stroke="#ddd"/>`)
    out.push(`<text x="${x(t)}" y="${top + plotHeight + 14}" text-anchor="middle" fill="#555">${fmt(t)}</text>`)
  }
  out.push(`<text x="${labelWidth + plotWidth / 2}" y="${top + plotHeight + 30}" text-anchor="middle" fill="#333">${esc(chart.axis)}</text>`)
  chart.categories.forEach((category, i) => {
    const y0 = top + i * groupHeight + gap / 2
    out.push(`<text x="${labelWidth - 6}" y="${y0 + (chart.series.length * bar) / 2 + 4}" text-anchor="end">${esc(category)}</text>`)
    chart.series.forEach((s, j) => {
      const v = s.values[i]
      if (v === null || v === undefined || !Number.isFinite(v)) return
      const style = seriesStyle(j)
      out.push(
        `<rect x="${labelWidth}" y="${y0 + j * bar}" width="${Math.max(0.5, x(v) - labelWidth).toFixed(1)}" height="${bar - 2}" fill="${style.color}"><title>${esc(`${category}, ${s.name}: ${v.toFixed(2)}`)}</title></rect>`,
      )
    })
  })
  if (chart.reference !== undefined) {
    const r = x(chart.reference)
    out.push(`<line x1="${r}" y1="${top - 4}" x2="${r}" y2="${top + plotHeight}" stroke="#000" stroke-dasharray="4 3"/>`)
  }
  chart.series.forEach((s, j) => {
    const lx = labelWidth + (j % 4) * 130
    const ly = legendTop + Math.floor(j / 4) * 20
    out.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${seriesStyle(j).color}"/>`)
    out.push(`<text x="${lx + 16}" y="${ly}">${esc(s.name)}</text>`)
  })
  out.push('</svg>')
  return `${out.join('\n')}\n`
}
