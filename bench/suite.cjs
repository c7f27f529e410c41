// Benchmark suites over the built package (`npm run build` first), outside `npm test`:
//   npm run bench:suite -- [generated] [fixtures] [peer] [napi] [mainnet] [replay] [witness] [plain-loop] [--txs 1000]
//     [--threads 1,2,4,8] [--time 500] [--fixtures dir] [--witness-fixtures dir] [--runs 3] [--results dir | --no-results]
// generated: every generated workload, sequential vs parallel at each thread count (tinybench).
// fixtures:  the largest mainnet fixture blocks (../shared/fixtures/mainnet), sequential, auto, parallel (tinybench).
// peer:      each generated workload through parallel-evm (auto mode) and @ethereumjs/vm (tinybench).
// napi:      executeBlock from Node vs the Rust replay example on the same blocks (bench/node-vs-replay.cjs).
// mainnet:   every fixture block through executeBlock, auto and forced parallel against sequential, timed
//            as `parallel-evm run` times them, `--runs` passes over the folder (at each thread count of
//            --threads from 2 up to the cores).
// replay:    the same with the Rust replay example (`cargo build --release -p parallel-evm-core --example replay`).
// witness:   the blocks of ../shared/fixtures/mainnet-witness (--witness-fixtures) on their witness state, as
//            replay times them but over 9 rounds: per block the engine auto mode chose, why, re-executions
//            and the medians of sequential, auto and forced parallel.
// plain-loop: our sequential engine against a plain revm loop over the same blocks (mainnet and
//            mainnet-witness), in one process (`cargo build --release -p parallel-evm-core --example plain_loop`).
// With no suite named, runs generated, fixtures and peer. Each suite prints a table and writes its raw
// results as JSON under bench/results/ (`npm run bench:report` turns them into the docs' tables).
const { execFileSync } = require('node:child_process')
const { mkdtempSync, mkdirSync, rmSync, writeFileSync } = require('node:fs')
const { availableParallelism, tmpdir } = require('node:os')
const { join } = require('node:path')
const { parseArgs } = require('node:util')
const { Bench } = require('tinybench')
const { executeBlock, prepareBlock, prepareFixture, prepareState } = require('../dist/index.js')
const { cachedWorkload, WORKLOADS } = require('../dist/bench/workloads.js')
const { EthereumjsPeer } = require('../dist/bench/ethereumjs.js')
const { resultsFile, writeResults } = require('../dist/bench/results.js')
const { defaultFixtures } = require('../dist/cli/bench.js')
const { blockPaths, measureBlock } = require('../dist/cli/run.js')
const { compare, replayBinary } = require('./node-vs-replay.cjs')
const { readdirSync, statSync, existsSync } = require('node:fs')

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    txs: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    threads: { type: 'string', default: availableParallelism() >= 16 ? '1,2,4,8,16' : '1,2,4,8' },
    time: { type: 'string', default: '500' },
    fixtures: { type: 'string' },
    'witness-fixtures': { type: 'string' },
    'max-fixtures': { type: 'string', default: '4' },
    runs: { type: 'string', default: '3' },
    results: { type: 'string', default: join(__dirname, 'results') },
    'no-results': { type: 'boolean', default: false },
  },
})
const txs = Number(values.txs)
const seed = Number(values.seed)
const threads = values.threads.split(',').map(Number)
const time = Number(values.time)
const runs = Number(values.runs)
const suites = positionals.length > 0 ? positionals : ['generated', 'fixtures', 'peer']

/** Writes a suite's raw results (bench/results/<suite>-<date>.json unless --no-results). */
function save(suite, settings, rows, threadList = threads) {
  if (values['no-results']) return
  const path = writeResults(values.results, resultsFile(suite, threadList, { ...settings, command: process.argv.slice(2).join(' ') }, rows))
  console.log(`raw results: ${path}`)
}

async function generated() {
  const out = []
  for (const w of WORKLOADS) {
    const g = await cachedWorkload(w, txs, seed)
    out.push({ name: g.name, g, block: await prepareBlock(g.block, { chain: g.chain }), state: await prepareState(g.prestate) })
  }
  return out
}

function largestFixtures() {
  const dir = values.fixtures ?? defaultFixtures()
  if (!dir) return []
  if (!existsSync(dir)) throw new Error(`--fixtures ${dir} does not exist`)
  return readdirSync(dir)
    .filter((d) => existsSync(join(dir, d, 'block.json')))
    .map((d) => ({ d: join(dir, d), size: statSync(join(dir, d, 'block.json')).size }))
    .sort((a, b) => b.size - a.size)
    .slice(0, Number(values['max-fixtures']))
    .map((x) => x.d)
}

async function report(suite, title, bench, settings) {
  await bench.warmup()
  await bench.run()
  console.log(`\n## ${title}`)
  console.table(bench.table())
  const ms = (x) => (x === undefined ? null : +x.toFixed(4))
  save(
    suite,
    settings,
    bench.tasks.map((t) => ({ task: t.name, minMs: ms(t.result?.min), meanMs: ms(t.result?.mean), p75Ms: ms(t.result?.p75), samples: t.result?.samples.length ?? 0 })),
  )
}

/** Thread counts worth a pass over the mainnet folder: from 2 up to the cores. */
const foldThreads = () => {
  const list = threads.filter((t) => t >= 2 && t <= availableParallelism())
  return list.length > 0 ? list : [Math.max(2, Math.min(...threads))]
}

/**
 * `runs` passes over every fixture block: for each block, auto mode then forced parallel, each
 * against sequential in alternating rounds (`measure`). Rows are the per-pass lines.
 */
async function folderPasses(measure, dir = values.fixtures ?? defaultFixtures()) {
  if (!dir) {
    console.log('\n## skipped: no ../shared/fixtures/mainnet (pass --fixtures)')
    return null
  }
  const rows = []
  const list = foldThreads()
  for (let run = 1; run <= runs; run++) {
    for (const t of list) {
      for (const mode of ['auto', 'parallel']) {
        const lines = await measure(dir, t, mode)
        for (const line of lines) rows.push({ run, requestedMode: mode, requestedThreads: t, ...line })
        const failed = lines.filter((l) => l.error || !l.verified.matchesSequential || l.verified.gasUsed === false || l.verified.receiptsRoot === false || l.verified.logsBloom === false)
        if (failed.length > 0) process.exitCode = 1
        const big = lines.filter((l) => !l.error && l.txs >= 100)
        const gm = Math.exp(big.reduce((s, l) => s + Math.log(l.speedup), 0) / big.length)
        console.log(`pass ${run}/${runs}, ${t} threads, ${mode}: ${lines.length} blocks, ${failed.length} failed, geometric mean over the ${big.length} blocks of >= 100 txs: ${gm.toFixed(3)}x`)
      }
    }
  }
  return { dir, rows, list }
}

/** The mainnet-witness fixture folder: --witness-fixtures, else beside the mainnet one. */
function witnessFixtures() {
  if (values['witness-fixtures']) return values['witness-fixtures']
  const mainnet = values.fixtures ?? defaultFixtures()
  const dir = mainnet && join(mainnet, '..', 'mainnet-witness')
  return dir && existsSync(dir) ? dir : undefined
}

const plainLoopBinary = join(__dirname, '..', 'target', 'release', 'examples', 'plain_loop')

/** JSON lines of a Rust example (exit code 1 when a block fails: its line says which). */
function exampleLines(binary, args) {
  let stdout
  try {
    stdout = execFileSync(binary, args, { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'inherit'] })
  } catch (e) {
    stdout = e.stdout ?? ''
  }
  return stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))
}

/** The replay example over `dir` (`rounds` alternating rounds, 25 ms of sequential time at least). */
const replayFolder = (rounds) => (dir, t, mode) => exampleLines(replayBinary, ['--threads', String(t), '--mode', mode, '--rounds', String(rounds), '--min-ms', '25', ...blockPaths(dir)])

const SUITES = {
  async generated() {
    const bench = new Bench({ time, warmupIterations: 2 })
    for (const s of await generated()) {
      bench.add(`${s.name} sequential`, () => executeBlock({ block: s.block, state: s.state, mode: 'sequential', threads: 1 }))
      for (const t of threads) bench.add(`${s.name} parallel ${t}t`, () => executeBlock({ block: s.block, state: s.state, mode: 'parallel', threads: t }))
    }
    await report('generated', `generated blocks (${txs} transactions, seed ${seed})`, bench, { txs, seed, timeMs: time })
  },
  async fixtures() {
    const dirs = largestFixtures()
    if (dirs.length === 0) return console.log('\n## fixtures: skipped (no ../shared/fixtures/mainnet; pass --fixtures)')
    const bench = new Bench({ time, warmupIterations: 2 })
    for (const d of dirs) {
      const { block, state } = await prepareFixture(d)
      bench.add(`${block.number} sequential`, () => executeBlock({ block, state, mode: 'sequential', threads: 1 }))
      for (const t of threads) {
        bench.add(`${block.number} auto ${t}t`, () => executeBlock({ block, state, mode: 'auto', threads: t }))
        bench.add(`${block.number} parallel ${t}t`, () => executeBlock({ block, state, mode: 'parallel', threads: t }))
      }
    }
    await report('fixtures', 'mainnet fixture blocks', bench, { maxFixtures: Number(values['max-fixtures']), timeMs: time })
  },
  async peer() {
    const bench = new Bench({ time: 0, iterations: 3, warmupIterations: 2, warmupTime: 0 })
    for (const s of await generated()) {
      const peer = await EthereumjsPeer.create({ block: s.g.block, prestate: s.g.prestate, chain: s.g.chain })
      const ours = await executeBlock({ block: s.block, state: s.state })
      const theirs = await peer.run()
      if (theirs.gasUsed !== ours.gasUsed) console.error(`WARNING: ${s.name}: @ethereumjs/vm used ${theirs.gasUsed} gas, parallel-evm ${ours.gasUsed}`)
      bench.add(`${s.name} parallel-evm (auto)`, () => executeBlock({ block: s.block, state: s.state }))
      bench.add(`${s.name} @ethereumjs/vm`, () => peer.run())
    }
    await report('peer', 'parallel-evm vs @ethereumjs/vm (same process)', bench, { txs, seed })
  },
  async napi() {
    const dir = mkdtempSync(join(tmpdir(), 'parallel-evm-napi-'))
    try {
      const blocks = []
      for (const w of ['independent', 'erc20', 'uniswap']) {
        const g = await cachedWorkload(w, txs, seed)
        const d = join(dir, w)
        mkdirSync(d)
        writeFileSync(join(d, 'block.json'), JSON.stringify(g.block))
        writeFileSync(join(d, 'prestate.json'), JSON.stringify(g.prestate))
        writeFileSync(join(d, 'chain.json'), JSON.stringify(g.chain))
        blocks.push([g.name, d])
      }
      for (const d of largestFixtures().slice(0, 1)) blocks.push([`mainnet ${d.split('/').at(-1)}`, d])
      console.log('\n## napi overhead: executeBlock from Node vs the Rust replay example (medians of 3 rounds of 30 runs)')
      const rows = []
      for (const [name, d] of blocks) for (const [t, mode] of [[1, 'sequential'], [2, 'parallel']]) rows.push({ name, ...(await compare(d, t, mode, 3, 30)) })
      console.table(rows)
      save('napi', { txs, seed, rounds: 3, perRound: 30 }, rows, [1, 2])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  },
  async mainnet() {
    // As `parallel-evm run --json` measures (3+ alternating rounds, 25 ms of sequential time).
    const out = await folderPasses(async (dir, t, mode) => {
      const lines = []
      for (const p of blockPaths(dir)) {
        try {
          const { block, state } = await prepareFixture(p)
          lines.push(await measureBlock(block, state, { repeat: 3, minTime: 25, threads: t, mode }))
        } catch (e) {
          lines.push({ path: p, error: e.message, code: e.code ?? 'INTERNAL_ERROR' })
        }
      }
      return lines
    })
    if (out) save('mainnet', { fixtures: out.dir, runs, repeat: 3, minTimeMs: 25, via: 'executeBlock (Node)' }, out.rows, out.list)
  },
  async replay() {
    if (!existsSync(replayBinary)) throw new Error(`${replayBinary} is missing: cargo build --release -p parallel-evm-core --example replay`)
    const out = await folderPasses(replayFolder(3))
    if (out) save('replay', { fixtures: out.dir, runs, rounds: 3, minMs: 25, via: 'Rust replay example' }, out.rows, out.list)
  },
  async witness() {
    if (!existsSync(replayBinary)) throw new Error(`${replayBinary} is missing: cargo build --release -p parallel-evm-core --example replay`)
    const dir = witnessFixtures()
    if (!dir) return console.log('\n## witness: skipped (no ../shared/fixtures/mainnet-witness; pass --witness-fixtures)')
    const out = await folderPasses(replayFolder(9), dir)
    if (out) save('witness', { fixtures: out.dir, runs, rounds: 9, minMs: 25, via: 'Rust replay example, witness state' }, out.rows, out.list)
  },
  async 'plain-loop'() {
    if (!existsSync(plainLoopBinary)) throw new Error(`${plainLoopBinary} is missing: cargo build --release -p parallel-evm-core --example plain_loop`)
    const dirs = [values.fixtures ?? defaultFixtures(), witnessFixtures()].filter(Boolean)
    if (dirs.length === 0) return console.log('\n## plain-loop: skipped (no ../shared/fixtures/mainnet; pass --fixtures)')
    const rows = exampleLines(plainLoopBinary, ['--rounds', '9', '--min-ms', '50', ...dirs])
    const failed = rows.filter((r) => r.error)
    if (failed.length > 0) process.exitCode = 1
    const big = rows.filter((r) => !r.error && !r.witness && r.txs >= 100)
    const gm = Math.exp(big.reduce((s, r) => s + Math.log(r.ratio), 0) / big.length)
    console.log(`\n## plain-loop: ${rows.length} blocks, ${failed.length} failed; sequential engine / plain revm loop, geometric mean over the ${big.length} mainnet blocks of >= 100 txs: ${gm.toFixed(3)}x`)
    save('plain-loop', { fixtures: dirs, rounds: 9, minMs: 50, via: 'Rust plain_loop example' }, rows, [1])
  },
}

async function main() {
  for (const s of suites) {
    if (!SUITES[s]) throw new Error(`unknown suite '${s}' (choose from ${Object.keys(SUITES).join(', ')})`)
    await SUITES[s]()
  }
}
main().catch((e) => {
  console.error(e.message)
  process.exitCode = 1
})
