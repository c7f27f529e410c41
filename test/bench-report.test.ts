// `npm run bench:report`: the docs' figures come from the raw results under bench/results/. On a
// small results fixture the generated tables hold exactly the figures the rows give; and the
// committed README and docs/performance.md are what the report makes of the files they cite.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { repoRoot } from './helpers.js'

const fixtureResults = join(repoRoot, 'test', 'fixtures', 'bench-results')
const { replaceSection, updateDocs } = require('../dist/bench/figures.js') as typeof import('../dist/bench/figures.js')

/** A copy of the repository's README and docs/performance.md in a fresh folder, with `results` as bench/results. */
function sandbox(results?: string[]): string {
  const root = mkdtempSync(join(tmpdir(), 'parallel-evm-report-'))
  mkdirSync(join(root, 'docs'))
  mkdirSync(join(root, 'bench', 'results'), { recursive: true })
  cpSync(join(repoRoot, 'README.md'), join(root, 'README.md'))
  cpSync(join(repoRoot, 'docs', 'performance.md'), join(root, 'docs', 'performance.md'))
  for (const f of results ?? []) cpSync(f, join(root, 'bench', 'results', f.split('/').at(-1)!))
  return root
}

const section = (text: string, name: string) => text.split(`<!-- bench:${name} -->`)[1]!.split(`<!-- /bench:${name} -->`)[0]!
const withoutSections = (text: string) => text.replace(/<!-- bench:([\w-]+) -->[\s\S]*?<!-- \/bench:\1 -->/g, '')

let roots: string[] = []
afterEach(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true })
  roots = []
})

describe('bench report', () => {
  it('turns the latest results of each suite into the headline and the performance tables', () => {
    const files = ['bench-2026-01-02T01-00-00-000Z', 'mainnet-2026-01-01T00-00-00-000Z', 'mainnet-2026-01-02T00-00-00-000Z', 'napi-2026-01-02T02-00-00-000Z']
    const root = sandbox(files.map((f) => join(fixtureResults, `${f}.json`)))
    roots.push(root)
    const before = { readme: readFileSync(join(root, 'README.md'), 'utf8'), perf: readFileSync(join(root, 'docs', 'performance.md'), 'utf8') }
    const written = updateDocs({ root })
    expect(written.map((p: string) => p.slice(root.length + 1)).sort()).toEqual(['README.md', 'docs/figures/bench-speedup.svg', 'docs/figures/mainnet-speedup.svg', 'docs/performance.md'])
    const readme = readFileSync(join(root, 'README.md'), 'utf8')
    const perf = readFileSync(join(root, 'docs', 'performance.md'), 'utf8')
    // Only what is between the markers changes.
    expect(withoutSections(readme)).toBe(withoutSections(before.readme))
    expect(withoutSections(perf)).toBe(withoutSections(before.perf))

    // Mainnet: medians per block over the passes (1000: auto 1.5/1.7, forced 1.4/1.6; 2000: auto
    // 1.0/0.96 run sequentially, forced 2.0/2.2), the 10-transaction block left out; geometric
    // means sqrt(1.6 * 0.98) and sqrt(1.5 * 2.1).
    const headline = section(readme, 'headline')
    expect(headline).toContain('| 2 mainnet blocks of ≥ 100 transactions (geometric mean) | 2 | per block | 1.25x | 1.77x |  |')
    expect(headline).toContain('| mainnet block 2000, the slowest in auto mode | 2 | sequential | 0.98x | 2.10x |  |')
    // Generated: auto 10 / 5.5 ms, forced at auto mode's 2 threads 10 / 5 ms, the peer 5002 / 5 ms.
    expect(headline).toContain('| OpenZeppelin ERC20 transfers between distinct holders (no conflicts), 1,000 transactions | 2 | guessed groups | 1.82x | 2.00x | 1,000x |')
    expect(headline).toContain('| OpenZeppelin ERC20 transfers from distinct holders to one receiver (one hot balance slot), 1,000 transactions | 2 | Block-STM | 1.00x | 1.00x | 500x |')
    expect(headline).not.toContain('mainnet 1000 ') // the bench's mainnet rows are in the performance table only
    expect(headline).toContain('2 CPUs (Test CPU @ 2.0GHz)')
    expect(headline).toContain('Conditions noted with the results: test fixture.')
    // No file names (they carry dates) in the README: performance.md's conditions link them.
    expect(headline).toContain('the `mainnet` suite (executeBlock from Node, medians of 2 passes, commit 0123456789)')
    expect(headline).toContain('[performance.md](docs/performance.md#conditions)')
    expect(headline).not.toMatch(/2026|\d\d:\d\d/)
    expect(section(perf, 'headline')).toContain('[performance.md](performance.md#conditions)')

    const mainnet = section(perf, 'mainnet')
    expect(mainnet).toContain('2 passes over 3 blocks (2 of them with ≥ 100 transactions)')
    expect(mainnet).toContain('| executeBlock (Node) | 2 | auto | **1.25x** | 1.22x, 1.28x | 0.98x (2000) | 1.60x (1000) | 1 of 4 | 12 of 12 |')
    expect(mainnet).toContain('| executeBlock (Node) | 2 | forced parallel | **1.77x** | 1.67x, 1.88x | 1.50x (1000) | 2.10x (2000) | 0 of 4 | 12 of 12 |')
    // The older mainnet file is not used.
    expect(perf).not.toContain('9.99')
    expect(perf).not.toContain('mainnet-2026-01-01')
    expect(section(perf, 'mainnet-blocks')).toContain('| 2000 | 150 | 8.0M | 1.00 | sequential | sequential | 0.98x | 2.10x |')
    expect(section(perf, 'mainnet-blocks')).not.toContain('| 3000 |')

    const generated = section(perf, 'generated')
    expect(generated).toContain('1,000 transactions per generated block (seed 1); fastest of ≥ 5 runs and 300 ms per cell')
    expect(generated).toContain('| erc20 ×1000 | 1,000 | 50.0M | 10.00 | 0.80x | 2.00x | 1.82x (guessed groups) | 5000 | 9091 | 0 / 3 | 5,002 | yes |')
    expect(generated).toContain('| mainnet 1000 | 200 | 12.0M | 4.00 | 0.91x | 1.60x | 1.60x (Block-STM) | 3000 | 4800 | 0 / 3 |  | yes |')
    expect(section(perf, 'napi')).toContain('| erc20 | 1,000 | 2 / parallel | 5.000 | 5.500 | 1.10x | 1.08x | 1.20x | 15.25 |')
    expect(section(perf, 'conditions')).toContain(
      '| `napi` | [bench/results/napi-2026-01-02T02-00-00-000Z.json](../bench/results/napi-2026-01-02T02-00-00-000Z.json) | 0123456789 | 2 CPUs (Test CPU @ 2.0GHz), 8 GiB, linux 6.1, Node v20.0.0 | 1, 2 | 1.5, 1.2, 1 | test fixture |',
    )
    expect(section(perf, 'charts')).toContain('![Speedup of each mainnet block](figures/mainnet-speedup.svg)')

    // Charts: one bar per measured value, drawn to scale.
    const svg = readFileSync(join(root, 'docs', 'figures', 'mainnet-speedup.svg'), 'utf8')
    expect(svg.match(/<rect [^>]*><title>/g)).toHaveLength(4)
    expect(svg).toContain('<title>2000 (150 txs), forced parallel: 2.10</title>')
    const bars = readFileSync(join(root, 'docs', 'figures', 'bench-speedup.svg'), 'utf8')
    expect(bars.match(/<rect [^>]*><title>/g)).toHaveLength(9) // 3 blocks x (1, 2 threads, auto)

    // Regenerating gives the same bytes.
    updateDocs({ root })
    expect(readFileSync(join(root, 'README.md'), 'utf8')).toBe(readme)
    expect(readFileSync(join(root, 'docs', 'performance.md'), 'utf8')).toBe(perf)
  })

  it('tables the mainnet-witness blocks per block and the sequential engine against the plain revm loop', () => {
    const files = ['witness-2026-01-02T03-00-00-000Z', 'plain-loop-2026-01-02T04-00-00-000Z']
    const root = sandbox(files.map((f) => join(fixtureResults, `${f}.json`)))
    roots.push(root)
    updateDocs({ root })
    const perf = readFileSync(join(root, 'docs', 'performance.md'), 'utf8')
    // Medians over the two passes of each block's round medians: 5000 auto 6/4 and 6/3 ms (1.5x,
    // 2x), forced 6/5 and 6/4; 6000 run sequentially by auto mode (its reason kept), forced 0.5x
    // and 0.8x with 100 and 120 re-executions. The plain-loop column is the witness rows' ratio.
    const witness = section(perf, 'witness')
    expect(witness).toContain('2 passes, each block timed against sequential over ≥ 9 alternating rounds and ≥ 25 ms')
    expect(witness).toContain('| 5000 | 150 | 12.0M | 6.00 | Block-STM |  | 15 | 3.50 | 1.75x | 4.50 | 1.35x | 4 | 1.10x |')
    expect(witness).toContain('| 6000 | 60 | 7.0M | 2.00 | sequential | 40 of 60 transactions call one contract entry point | 0 | 2.10 | 0.95x | 3.25 | 0.65x | 110 |  |')
    // sqrt(1.75 * 2 / 2.1) and sqrt(1.35 * 0.65).
    expect(witness).toContain('Geometric mean over the 2 blocks: auto mode **1.29x**, forced parallel 0.94x; 8 of 8 runs verified')
    // Plain loop: sqrt(1.01 * 1.04) over the mainnet blocks of >= 100 transactions (3000 has 10),
    // the witness block apart, the failed block counted and left out.
    const plain = section(perf, 'plain-loop')
    expect(plain).toContain('| the 2 mainnet blocks of ≥ 100 transactions | **1.02x** |')
    expect(plain).toContain('| the 1 mainnet-witness blocks (witness state) | 1.10x |')
    expect(plain).toContain('| all 4 blocks | 1.23x |')
    expect(plain).toContain('1 block(s) failed')
    expect(plain).toContain('| 2000 | 150 | 8.0M | prestate | 1.00 | 1.04 | 1.04x |')
    expect(plain).not.toContain('| 3000 |')
  })

  it("builds the range sections from the range benches' rows", () => {
    const root = sandbox()
    roots.push(root)
    const run = (workers: number, blocksPerSecond: number, busy: number[]) => ({
      kind: 'cluster',
      latencyMs: 20,
      state: 'proofs',
      workers,
      blocks: 300,
      chunk: 25,
      wallMs: 300_000 / blocksPerSecond,
      blocksPerSecond,
      runs: busy.map((machineBusy) => ({ machineBusy })),
    })
    writeFileSync(
      join(root, 'bench', 'results', 'cluster-latency.json'),
      JSON.stringify({
        machine: 'linux-x64, 2 cores',
        commit: 'abcdef0123456789',
        date: '2026-01-02T00:00:00Z',
        note: 'idle',
        rows: [run(1, 20, [0.5, 0.7]), run(2, 34, [0.9]), { kind: 'ratio', workers: 2, speedup: 1.7 }],
      }),
    )
    const latency = (config: string, args: string, wallMs: number, rpcCalls: number) => ({
      kind: 'latency',
      latencyMs: 20,
      config,
      args,
      blocks: 150,
      wallMs,
      rpcCalls,
      blocksPerSecond: 150_000 / wallMs,
      mgasPerSecond: 1,
      verified: 150,
    })
    const rows = [latency('replay', '', 6000, 700), latency('prefetch 0, no carry', '--prefetch 0 --no-carry', 54000, 5600), { kind: 'ratio', latencyMs: 20, speedup: 9, callsRatio: 0.125 }]
    writeFileSync(join(root, 'bench', 'results', 'replay-latency.json'), JSON.stringify({ rows }))
    updateDocs({ root })
    const perf = readFileSync(join(root, 'docs', 'performance.md'), 'utf8')
    const cluster = section(perf, 'cluster')
    expect(cluster).toContain('| 1 | 20 ms | 300 (chunks of 25, proofs) | 15.0 | 20.0 | 1.00x | 60% |')
    expect(cluster).toContain('| 2 | 20 ms | 300 (chunks of 25, proofs) | 8.8 | 34.0 | 1.70x | 90% |')
    expect(cluster).toContain('commit abcdef0123, 2026-01-02 (idle)')
    const replay = section(perf, 'range-replay')
    expect(replay).toContain('| 20 ms | `replay --prefetch 0 --no-carry` | 150 | 54.0 | 2.8 | 1.0 | 5600 | 150 of 150 |')
    expect(replay).toContain('range replay is **9.00x** faster with 0.125 of the RPC calls')
    expect(replay).not.toContain('RSS')
    const beyond = section(readFileSync(join(root, 'README.md'), 'utf8'), 'beyond')
    expect(beyond).toContain("| range replay (`replay --state proofs`) against fetching each block's whole state in turn, 150 blocks, 20 ms per request | 9.00x faster, 0.13 of the RPC calls |")
    expect(beyond).toContain('2 workers against one, 300 blocks, 20 ms per request | 1.70x the blocks/s (34.0 against 20.0) |')
    expect(beyond).not.toContain('traces')
  })

  it('contended DEX blocks: one row per block with what auto mode ran, and the blocks where it was slower', () => {
    const root = sandbox()
    roots.push(root)
    const block = (n: number, contention: number, seqMs: number, autoMs: number, autoMode: string, autoReason: string | null) => ({
      kind: 'block',
      block: n,
      contention,
      txs: 200,
      hotTxs: Math.round(200 * contention),
      reverted: 9,
      seqMs,
      autoMs,
      autoMode,
      autoEngine: autoMode === 'sequential' ? 'sequential' : 'blockStm',
      autoReason,
      autoReexecutions: 12,
      parMs: 20,
      parReexecutions: 40,
      autoSpeedup: seqMs / autoMs,
      parSpeedup: seqMs / 20,
      autoCpuBound: autoMode === 'sequential' ? 1 : 1.5,
      verified: true,
    })
    const rows = [block(7, 0.5, 10, 8, 'parallel', null), block(8, 0.95, 10, 12.5, 'sequential', 'hot contract')]
    writeFileSync(
      join(root, 'bench', 'results', 'contended-dex.json'),
      JSON.stringify({ machine: 'linux-x64, 2 cores', commit: 'abcdef0123456789', date: '2026-01-02T00:00:00Z', settings: { threads: 2, rounds: 9 }, rows }),
    )
    updateDocs({ root })
    const dex = section(readFileSync(join(root, 'docs', 'performance.md'), 'utf8'), 'contended-dex')
    expect(dex).toContain('| 7 | 0.50 | 200 | 100 | 9 | 10.00 | blockStm | 8.00 | **1.25x** | 12 | 1.50x | 20.00 | 0.50x | 40 |')
    expect(dex).toContain('| 8 | 0.95 | 200 | 190 | 9 | 10.00 | sequential (hot contract) | 12.50 | **0.80x** | 12 | 1.00x | 20.00 | 0.50x | 40 |')
    expect(dex).toContain('geometric mean over the 2 blocks: **1.00x** (forced parallel 0.50x); slower than sequential on 1 of 2; 2 of 2 blocks verified')
    expect(dex).toContain('median of 9 rounds')
  })

  it('says which suite is missing instead of leaving a stale figure', () => {
    const root = sandbox()
    roots.push(root)
    updateDocs({ root })
    expect(section(readFileSync(join(root, 'README.md'), 'utf8'), 'headline')).toMatch(/No benchmark results yet/)
    const perf = readFileSync(join(root, 'docs', 'performance.md'), 'utf8')
    expect(section(perf, 'napi')).toMatch(/No `napi` results: run `npm run bench:suite -- napi`/)
    expect(section(perf, 'witness')).toMatch(/No `witness` results/)
    expect(section(perf, 'plain-loop')).toMatch(/No `plain-loop` results/)
    expect(section(perf, 'cluster')).toMatch(/No `cluster-latency` results/)
    expect(section(perf, 'range-replay')).toMatch(/No `replay-latency` results/)
    expect(section(perf, 'trace')).toMatch(/No `trace-bar` results/)
    expect(section(perf, 'contended-dex')).toMatch(/No `contended-dex` results: run `npm run bench:dex`/)
    expect(perf).not.toMatch(/\d\.\d\dx/)
  })

  it('refuses a document without the markers', () => {
    expect(() => replaceSection('# no markers\n', 'headline', 'x')).toThrow(/<!-- bench:headline -->/)
    expect(replaceSection('a <!-- bench:x -->old<!-- /bench:x --> b', 'x', 'new')).toBe('a <!-- bench:x -->\nnew\n<!-- /bench:x --> b')
  })

  it('the committed README and docs/performance.md are generated from the results they cite', () => {
    const perf = readFileSync(join(repoRoot, 'docs', 'performance.md'), 'utf8')
    const cited = [...new Set([...perf.matchAll(/\(\.\.\/(bench\/results\/[\w.-]+\.json)\)/g)].map((m) => m[1]!))]
    expect(cited.length).toBeGreaterThan(0)
    for (const f of cited) expect(existsSync(join(repoRoot, f)), f).toBe(true)
    const root = sandbox(cited.map((f) => join(repoRoot, f)))
    roots.push(root)
    updateDocs({ root })
    expect(readFileSync(join(root, 'README.md'), 'utf8')).toBe(readFileSync(join(repoRoot, 'README.md'), 'utf8'))
    expect(readFileSync(join(root, 'docs', 'performance.md'), 'utf8')).toBe(perf)
    for (const svg of ['bench-speedup.svg', 'mainnet-speedup.svg']) {
      expect(readFileSync(join(root, 'docs', 'figures', svg), 'utf8')).toBe(readFileSync(join(repoRoot, 'docs', 'figures', svg), 'utf8'))
    }
  })
})
