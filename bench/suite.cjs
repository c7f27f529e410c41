// tinybench suites over the built package (`npm run build` first), outside `npm test`:
//   npm run bench:suite -- [generated] [fixtures] [peer] [napi] [--txs 1000] [--threads 1,2,4,8] [--time 500] [--fixtures dir]
// generated: every generated workload, sequential vs parallel at each thread count.
// fixtures:  the largest mainnet fixture blocks (../shared/fixtures/mainnet), sequential, auto, parallel.
// peer:      each generated workload through parallel-evm (auto mode) and @ethereumjs/vm.
// napi:      executeBlock from Node vs the Rust replay example on the same blocks (bench/node-vs-replay.cjs).
// With no suite named, runs generated, fixtures and peer. Prints one tinybench table per suite.
const { mkdtempSync, mkdirSync, rmSync, writeFileSync } = require('node:fs')
const { availableParallelism, tmpdir } = require('node:os')
const { join } = require('node:path')
const { parseArgs } = require('node:util')
const { Bench } = require('tinybench')
const { executeBlock, prepareBlock, prepareFixture, prepareState } = require('../dist/index.js')
const { cachedWorkload, WORKLOADS } = require('../dist/bench/workloads.js')
const { EthereumjsPeer } = require('../dist/bench/ethereumjs.js')
const { defaultFixtures } = require('../dist/cli/bench.js')
const { compare } = require('./node-vs-replay.cjs')
const { readdirSync, statSync, existsSync } = require('node:fs')

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    txs: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    threads: { type: 'string', default: availableParallelism() >= 16 ? '1,2,4,8,16' : '1,2,4,8' },
    time: { type: 'string', default: '500' },
    fixtures: { type: 'string' },
    'max-fixtures': { type: 'string', default: '4' },
  },
})
const txs = Number(values.txs)
const seed = Number(values.seed)
const threads = values.threads.split(',').map(Number)
const time = Number(values.time)
const suites = positionals.length > 0 ? positionals : ['generated', 'fixtures', 'peer']

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

async function report(title, bench) {
  await bench.warmup()
  await bench.run()
  console.log(`\n## ${title}`)
  console.table(bench.table())
}

const SUITES = {
  async generated() {
    const bench = new Bench({ time, warmupIterations: 2 })
    for (const s of await generated()) {
      bench.add(`${s.name} sequential`, () => executeBlock({ block: s.block, state: s.state, mode: 'sequential', threads: 1 }))
      for (const t of threads) bench.add(`${s.name} parallel ${t}t`, () => executeBlock({ block: s.block, state: s.state, mode: 'parallel', threads: t }))
    }
    await report(`generated blocks (${txs} transactions, seed ${seed})`, bench)
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
    await report('mainnet fixture blocks', bench)
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
    await report('parallel-evm vs @ethereumjs/vm (same process)', bench)
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
      for (const d of largestFixtures().slice(0, 1)) blocks.push([`mainnet ${d}`, d])
      console.log('\n## napi overhead: executeBlock from Node vs the Rust replay example (medians of 3 rounds of 30 runs)')
      const rows = []
      for (const [name, d] of blocks) for (const [t, mode] of [[1, 'sequential'], [2, 'parallel']]) rows.push({ name, ...(await compare(d, t, mode, 3, 30)) })
      console.table(rows)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
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
