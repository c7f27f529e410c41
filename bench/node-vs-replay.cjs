// Node `executeBlock` vs the Rust replay example on the same block, threads and mode, interleaved
// in one run (on a shared machine only ratios within one run mean something). Both sides report
// best-of-3 times per round, on an already parsed block and state; the summary takes the median
// over rounds. Needs `npm run build` and `cargo build --release -p parallel-evm-core --example replay`.
// usage: node bench/node-vs-replay.cjs <fixture dir> [threads=2] [mode=parallel] [rounds=10]
const { execFileSync } = require('node:child_process')
const { join } = require('node:path')
const { executeBlock, prepareFixture } = require('../dist/index.js')

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
async function bestOf(n, f) {
  let best = Infinity
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    await f()
    best = Math.min(best, performance.now() - t)
  }
  return best
}

async function main() {
  const [dir, threads = '2', mode = 'parallel', rounds = '10'] = process.argv.slice(2)
  const replay = join(__dirname, '..', 'target', 'release', 'examples', 'replay')
  const fx = await prepareFixture(dir)
  const run = { block: fx.block, state: fx.state, threads: Number(threads), mode }
  const replayMs = [], nodeMs = [], decodedMs = []
  for (let r = 0; r < Number(rounds); r++) {
    replayMs.push(JSON.parse(execFileSync(replay, ['--threads', threads, '--mode', mode, dir], { encoding: 'utf8' })).parMs)
    nodeMs.push(await bestOf(3, () => executeBlock(run)))
    // Including the decoding of every receipt, log and diff entry into bigint/viem types.
    decodedMs.push(await bestOf(3, async () => { const res = await executeBlock(run); return [res.receipts, res.stateDiff] }))
  }
  const m = { replay: median(replayMs), node: median(nodeMs), decoded: median(decodedMs) }
  console.log(JSON.stringify({ block: fx.block.number, txs: fx.block.txCount, threads: Number(threads), mode, rounds: Number(rounds),
    replayMedianMs: +m.replay.toFixed(3), nodeMedianMs: +m.node.toFixed(3), ratio: +(m.node / m.replay).toFixed(3),
    nodeWithDecodingMedianMs: +m.decoded.toFixed(3) }))
}
main()
