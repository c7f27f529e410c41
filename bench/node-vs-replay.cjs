// Node `executeBlock` vs the Rust replay example on the same block, threads and mode, interleaved
// in one run (on a shared machine only ratios within one run mean something). Both sides report
// best-of-3 times per round after one untimed run, on an already parsed block and state; the summary takes the median
// over rounds. Needs `npm run build` and `cargo build --release -p parallel-evm-core --example replay`.
// Any fixture folder works, including generated blocks saved with `parallel-evm bench --save-blocks`.
// usage: node bench/node-vs-replay.cjs <fixture dir> [threads=2] [mode=parallel] [rounds=10]
// (also the `napi` suite of bench/suite.cjs)
const { execFileSync } = require('node:child_process')
const { existsSync } = require('node:fs')
const { join } = require('node:path')
const { executeBlock, prepareFixture } = require('../dist/index.js')

const replayBinary = join(__dirname, '..', 'target', 'release', 'examples', 'replay')
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
// One untimed run first, as `replay` does: the run after a pause (here, while the replay process
// ran) is slow for reasons outside either side (pool threads asleep, caches refilled).
async function bestOf(n, f) {
  await f()
  let best = Infinity
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    await f()
    best = Math.min(best, performance.now() - t)
  }
  return best
}

/** Medians over `rounds` of replay's parMs, executeBlock's time, and executeBlock plus decoding. */
async function compare(dir, threads = 2, mode = 'parallel', rounds = 10) {
  if (!existsSync(replayBinary)) throw new Error(`${replayBinary} is missing: cargo build --release -p parallel-evm-core --example replay`)
  const fx = await prepareFixture(dir)
  const run = { block: fx.block, state: fx.state, threads, mode }
  const replayMs = [], nodeMs = [], decodedMs = []
  for (let r = 0; r < rounds; r++) {
    replayMs.push(JSON.parse(execFileSync(replayBinary, ['--threads', String(threads), '--mode', mode, dir], { encoding: 'utf8' })).parMs)
    nodeMs.push(await bestOf(3, () => executeBlock(run)))
  }
  // Including the decoding of every receipt, log and diff entry into bigint/viem types; in rounds
  // of their own, as the garbage they leave (~10 ms of objects per call) is collected during the
  // calls that follow and would be billed to them.
  for (let r = 0; r < rounds; r++) {
    decodedMs.push(await bestOf(3, async () => { const res = await executeBlock(run); return [res.receipts, res.stateDiff] }))
  }
  const m = { replay: median(replayMs), node: median(nodeMs), decoded: median(decodedMs) }
  return { block: fx.block.number, txs: fx.block.txCount, threads, mode, rounds,
    replayMedianMs: +m.replay.toFixed(3), nodeMedianMs: +m.node.toFixed(3), ratio: +(m.node / m.replay).toFixed(3),
    nodeWithDecodingMedianMs: +m.decoded.toFixed(3) }
}

module.exports = { compare }

if (require.main === module) {
  const [dir, threads = '2', mode = 'parallel', rounds = '10'] = process.argv.slice(2)
  compare(dir, Number(threads), mode, Number(rounds)).then((r) => console.log(JSON.stringify(r)), (e) => {
    console.error(e.message)
    process.exitCode = 1
  })
}
