// Range replay with blocks run back to back in one engine call against one call per block
// (`npm run build` first; needs @foundry-rs/anvil, solc, @openzeppelin/contracts and @uniswap/v2-core):
//   node bench/replay-batch.cjs [--blocks 400] [--rounds 5] [--state prestate] [--threads 2] [--out bench/results/replay-batch.json]
// Mines a chain of mixed blocks on a local anvil (no latency) and replays it through the library,
// alternating `batchSize: 1` (one call into the engine per block, today's path before batching)
// and the default (the blocks whose inputs are fetched run back to back), twice: straight from the
// node, and from a warm SQLite cache (no RPC calls: what is left is the engine and the calls into
// it). Prints medians of blocks/s; writes the raw rows as JSON.
const { mkdirSync, mkdtempSync, rmSync, writeFileSync } = require('node:fs')
const { availableParallelism, tmpdir } = require('node:os')
const { dirname, join } = require('node:path')
const { parseArgs } = require('node:util')

const repo = join(__dirname, '..')
const { median, runInfo, startAnvil } = require('./support.cjs')
const { mineChain } = require('../dist/bench/anvil-chain.js')
const { replayBlocks, StateCache } = require('../dist/index.js')

const { values } = parseArgs({
  options: {
    blocks: { type: 'string', default: '400' },
    rounds: { type: 'string', default: '5' },
    state: { type: 'string', default: 'prestate' },
    threads: { type: 'string', default: String(Math.min(availableParallelism(), 8)) },
    out: { type: 'string', default: join(repo, 'bench', 'results', 'replay-batch.json') },
  },
})

async function replay(rpcUrl, from, to, batchSize, cache) {
  const started = performance.now()
  let blocks = 0
  let gas = 0n
  let waited = 0
  for await (const b of replayBlocks({ rpcUrl, from, to, state: values.state, chain: { chainId: 31337, hardfork: 'cancun' }, chainId: 31337, threads: Number(values.threads), batchSize, cache })) {
    if (!b.verification.receiptsRoot || !b.verification.gasUsed) throw new Error(`block ${b.number} failed its header checks`)
    blocks++
    gas += b.gasUsed
    if (b.timings.waitMs === 0) waited++
  }
  const wallMs = performance.now() - started
  return { blocks, wallMs, blocksPerSecond: (blocks * 1000) / wallMs, mgasPerSecond: Number(gas) / 1e3 / wallMs, readyBlocks: waited }
}

async function main() {
  const anvil = await startAnvil()
  const dir = mkdtempSync(join(tmpdir(), 'parallel-evm-batch-'))
  const rows = []
  try {
    const t = performance.now()
    const chain = await mineChain({ rpcUrl: anvil.url, blocks: Number(values.blocks), txsPerBlock: 8, seed: 25 })
    console.error(`mined ${chain.last} blocks in ${((performance.now() - t) / 1000).toFixed(1)} s`)
    const from = chain.first
    const to = chain.last
    const cache = new StateCache(join(dir, 'cache'))
    // Warms the cache (and the process) once.
    await replay(anvil.url, from, to, undefined, cache)
    for (const source of ['node', 'cache']) {
      const runs = { 'one call per block': [], 'back to back': [] }
      for (let round = 0; round < Number(values.rounds); round++) {
        for (const [name, batchSize] of [
          ['one call per block', 1],
          ['back to back', undefined],
        ]) {
          const r = await replay(anvil.url, from, to, batchSize, source === 'cache' ? cache : undefined)
          runs[name].push(r)
          rows.push({ kind: 'run', source, config: name, round, ...r })
        }
      }
      const single = median(runs['one call per block'].map((r) => r.blocksPerSecond))
      const batched = median(runs['back to back'].map((r) => r.blocksPerSecond))
      rows.push({ kind: 'batch', source, perBlockBlocksPerSecond: +single.toFixed(1), batchedBlocksPerSecond: +batched.toFixed(1), speedup: +(batched / single).toFixed(3) })
      console.log(
        `${source}: ${runs['back to back'][0].blocks} blocks, one call per block ${single.toFixed(0)} blocks/s, back to back ${batched.toFixed(0)} blocks/s (${(batched / single).toFixed(2)}x; medians of ${values.rounds})`,
      )
    }
    cache.close()
  } finally {
    anvil.stop()
    rmSync(dir, { recursive: true, force: true })
  }
  mkdirSync(dirname(values.out), { recursive: true })
  writeFileSync(values.out, `${JSON.stringify({ ...runInfo(), threads: Number(values.threads), state: values.state, rows }, null, 2)}\n`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
