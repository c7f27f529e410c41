// One look per chart series, so that no two series of a chart share it: chart.js's default
// palette has seven colours and repeats after them (the bench's speedup chart has a line per
// block, eleven by default). Twelve colours (Tableau 10 and two more), then the same colours
// with another dash pattern and point style: 48 distinct series before anything repeats.

export const COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#7f7f7f', '#1b9e77', '#7570b3'] as const

/** Dash patterns of lines (chart.js `borderDash`), one per round of the colours. */
export const DASHES: readonly number[][] = [[], [6, 4], [2, 3], [10, 3, 2, 3]]

/** Point styles (chart.js `pointStyle`), one per round of the colours. */
export const POINTS = ['circle', 'rect', 'triangle', 'rectRot'] as const

export type SeriesStyle = { color: string; dash: number[]; point: (typeof POINTS)[number] }

/** The style of the `i`-th series of a chart. */
export function seriesStyle(i: number): SeriesStyle {
  const round = Math.floor(i / COLORS.length) % DASHES.length
  return { color: COLORS[i % COLORS.length]!, dash: DASHES[round]!, point: POINTS[round]! }
}
