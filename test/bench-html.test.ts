// The bench's HTML report in a real browser: headless Chromium (Debian's `chromium` package, driven
// by puppeteer-core) opens a report of more series than chart.js's default palette has colours,
// waits until every chart element has reached its final place (the animation is over), and
// checks that the charts drew what the embedded data says, each series in a look of its own.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BenchReport, BenchRow } from '../dist/bench/report.js'
import type { Chart } from 'chart.js'

/** The page's chart.js, as the report's inlined bundle defines it. */
type PageGlobals = { Chart: typeof Chart }

const CANDIDATES = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].filter((p): p is string => !!p)
const chromium = CANDIDATES.find((p) => existsSync(p))
if (!chromium) console.warn('[parallel-evm tests] no chromium found (apt-get install chromium, or set CHROMIUM_PATH): the HTML report browser test is skipped')

const THREADS = [1, 2, 4, 8]

/** A report of `n` blocks with made-up but distinct figures. */
function report(n: number): BenchReport {
  const rows: BenchRow[] = Array.from({ length: n }, (_, i) => {
    const sequentialMs = 2 + i
    const parallelMs = Object.fromEntries(THREADS.map((t) => [String(t), sequentialMs / (1 + 0.1 * i + 0.2 * Math.log2(t))]))
    const speedup = Object.fromEntries(THREADS.map((t) => [String(t), sequentialMs / parallelMs[String(t)]!]))
    const gas = 10_000_000 + i * 1_000_000
    return {
      block: `block ${i}`,
      kind: 'generated',
      txs: 100 + i,
      gas,
      sequentialMs,
      parallelMs,
      speedup,
      bestSpeedup: Math.max(...Object.values(speedup)),
      reexecutions: Object.fromEntries(THREADS.map((t) => [String(t), i * t])),
      mgasPerSecond: {
        sequential: gas / sequentialMs / 1000,
        ...Object.fromEntries(THREADS.map((t) => [String(t), gas / parallelMs[String(t)]! / 1000])),
        auto: gas / (sequentialMs / 1.5) / 1000,
      },
      auto: { threads: 2, ms: sequentialMs / 1.5, speedup: 1.5, ran: 'parallel', engine: 'blockStm', reason: null },
      verified: true,
      // One block without a peer run: its bar is left out, not drawn at zero.
      peer: i === 3 ? undefined : { name: 'ethereumjs', ms: 1000 + i, mgasPerSecond: gas / (1000 + i) / 1000, gasUsed: gas, gasMatches: true, failedTxs: 0, fasterThanPeer: (1000 + i) / sequentialMs },
    }
  })
  return { date: '2026-01-01T00:00:00.000Z', machine: { cpus: 2, model: 'test CPU', platform: 'linux', memoryGiB: 4, node: 'v20' }, threads: THREADS, rows }
}

type Drawn = {
  id: string
  type: string
  labels: string[]
  datasets: { label: string; color: string; dash: number[]; data: (number | null)[]; drawn: (number | null)[] }[]
  colorsOnCanvas: string[]
}

describe.skipIf(!chromium)('bench HTML report in headless Chromium', () => {
  let dir: string
  let drawn: Drawn[]
  const data = report(13) // chart.js's default palette has 7 colours; ours must not repeat

  beforeAll(async () => {
    const { renderHtml } = await import('../dist/bench/html.js')
    const puppeteer = (await import('puppeteer-core')).default
    dir = mkdtempSync(join(tmpdir(), 'parallel-evm-html-'))
    const file = join(dir, 'report.html')
    writeFileSync(file, renderHtml(data))
    const browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] })
    try {
      const page = await browser.newPage()
      const errors: string[] = []
      page.on('pageerror', (e) => errors.push(String(e)))
      await page.goto(pathToFileURL(file).href, { waitUntil: 'load' })
      // Animation over: every element of every chart sits where its value says.
      await page.waitForFunction(
        () => {
          const charts = Object.values((globalThis as unknown as PageGlobals).Chart.instances)
          return (
            charts.length === 3 &&
            charts.every((c) =>
              c.data.datasets.every((d, i) => c.getDatasetMeta(i).data.every((el, j) => d.data[j] == null || Math.abs(el.y - c.scales.y!.getPixelForValue(d.data[j] as number)) < 0.5)),
            )
          )
        },
        { timeout: 30_000, polling: 100 },
      )
      expect(errors).toEqual([])
      drawn = await page.evaluate(() => {
        const hex = (r: number, g: number, b: number) => `#${[r, g, b].map((v) => v.toString(16).padStart(2, '0')).join('')}`
        return Object.values((globalThis as unknown as PageGlobals).Chart.instances).map((c) => {
          const canvas = c.canvas
          const pixels = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data
          const colors = new Set<string>()
          for (let p = 0; p < pixels.length; p += 4) if (pixels[p + 3] === 255) colors.add(hex(pixels[p]!, pixels[p + 1]!, pixels[p + 2]!))
          return {
            id: canvas.id,
            type: (c.config as { type: string }).type,
            labels: c.data.labels as string[],
            datasets: c.data.datasets.map((d, i) => ({
              label: d.label!,
              color: d.backgroundColor as string,
              dash: (d as { borderDash?: number[] }).borderDash ?? [],
              data: d.data as (number | null)[],
              drawn: c.getDatasetMeta(i).data.map((el, j) => (d.data[j] == null ? null : (c.scales.y!.getValueForPixel(el.y) ?? null))),
            })),
            colorsOnCanvas: [...colors],
          }
        })
      })
    } finally {
      await browser.close()
    }
  }, 120_000)

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('draws the three charts from the embedded data', () => {
    expect(drawn.map((c) => [c.id, c.type])).toEqual([
      ['speedup', 'line'],
      ['throughput', 'bar'],
      ['reexecutions', 'bar'],
    ])
    const [speedup, throughput, reexecutions] = drawn as [Drawn, Drawn, Drawn]
    expect(speedup.datasets.map((d) => d.label)).toEqual(data.rows.map((r) => r.block))
    expect(speedup.datasets[12]!.data).toEqual(THREADS.map((t) => data.rows[12]!.speedup[String(t)]))
    expect(throughput.labels).toEqual(data.rows.map((r) => r.block))
    expect(throughput.datasets.map((d) => d.label)).toEqual(['sequential', '1 threads', '2 threads', '4 threads', '8 threads', 'auto', '@ethereumjs/vm'])
    expect(reexecutions.datasets[3]!.data).toEqual(data.rows.map((r) => r.reexecutions['8']))
    // Where each element was drawn, read back through the chart's scale, is its value.
    for (const chart of drawn) {
      for (const d of chart.datasets) {
        d.data.forEach((v, j) => {
          if (v === null) expect(d.drawn[j]).toBeNull()
          else expect(Math.abs(d.drawn[j]! - v)).toBeLessThanOrEqual(Math.max(1e-6, Math.abs(v) * 0.01))
        })
      }
    }
    // The block without a peer run has no peer bar.
    expect(throughput.datasets[6]!.data[3]).toBeNull()
  })

  it('gives every series of a chart its own look, and paints it', () => {
    for (const chart of drawn) {
      const looks = chart.datasets.map((d) => `${d.color} ${d.dash.join(',')}`)
      expect(new Set(looks).size).toBe(looks.length)
      // Each series' colour is on the canvas (bars and point markers are filled with it).
      for (const d of chart.datasets) expect(chart.colorsOnCanvas).toContain(d.color)
    }
    // 13 lines: past the twelve colours, the thirteenth differs by its dash pattern.
    const speedup = drawn[0]!
    expect(new Set(speedup.datasets.map((d) => d.color)).size).toBe(12)
    expect(speedup.datasets[12]!.dash).not.toEqual([])
  })
})
