// Node `executeBlock` vs the Rust replay example on the same block, threads and mode, interleaved
// in one run (on a shared machine only ratios within one run mean something). Both sides measure
// the same way: one untimed run of sequential execution and of the mode, then three rounds that
// alternate the two, the best time of the mode per round (replay in a fresh process per round,
// Node in one process on an already parsed block and state); the summary takes the median over
// rounds. `fresh` repeats the Node side in a fresh process per round, exactly as replay runs (its
// ratio leaves out what a long-lived process pays for coming back after the replay process ran:
// caches refilled, pool and runner threads woken). Needs `npm run build` and `cargo build --release -p parallel-evm-core --example replay`.
// Any fixture folder works, including generated blocks saved with `parallel-evm bench --save-blocks`.
// usage: node bench/node-vs-replay.cjs <fixture dir> [threads=2] [mode=parallel] [rounds=10]
// (also the `napi` suite of bench/suite.cjs)
const { execFileSync } = require('node:child_process')
const { existsSync } = require('node:fs')
const { join } = require('node:path')
const { executeBlock, prepareFixture } = require('../dist/index.js')

const replayBinary = join(__dirname, '..', 'target', 'release', 'examples', 'replay')
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
// As `replay` does: one untimed run of each first (the run after a pause, here while the replay
// process ran, is slow for reasons outside either side: pool threads asleep, caches refilled),
// then `n` rounds of sequential, then the timed run of the mode.
async function bestOf(n, run) {
  const seq = () => run({ threads: 1, mode: 'sequential' })
  await seq()
  await run()
  let best = Infinity
  for (let i = 0; i < n; i++) {
    await seq()
    const t = performance.now()
    await run()
    best = Math.min(best, performance.now() - t)
  }
  return best
}

/** Medians over `rounds` of replay's parMs, executeBlock's time, and executeBlock plus decoding. */
async function compare(dir, threads = 2, mode = 'parallel', rounds = 10) {
  if (!existsSync(replayBinary)) throw new Error(`${replayBinary} is missing: cargo build --release -p parallel-evm-core --example replay`)
  const fx = await prepareFixture(dir)
  const run = { block: fx.block, state: fx.state, threads, mode }
  const replayMs = [], nodeMs = [], freshMs = [], decodedMs = []
  for (let r = 0; r < rounds; r++) {
    replayMs.push(JSON.parse(execFileSync(replayBinary, ['--threads', String(threads), '--mode', mode, dir], { encoding: 'utf8' })).parMs)
    nodeMs.push(await bestOf(3, (o = {}) => executeBlock({ ...run, ...o })))
    freshMs.push(Number(execFileSync(process.execPath, [__filename, '--fresh', dir, String(threads), mode], { encoding: 'utf8' })))
  }
  // Including the decoding of every receipt, log and diff entry into bigint/viem types; in rounds
  // of their own, as the garbage they leave (~10 ms of objects per call) is collected during the
  // calls that follow and would be billed to them.
  for (let r = 0; r < rounds; r++) {
    decodedMs.push(await bestOf(3, async (o = {}) => { const res = await executeBlock({ ...run, ...o }); return [res.receipts, res.stateDiff] }))
  }
  const m = { replay: median(replayMs), node: median(nodeMs), fresh: median(freshMs), decoded: median(decodedMs) }
  return { block: fx.block.number, txs: fx.block.txCount, threads, mode, rounds,
    replayMedianMs: +m.replay.toFixed(3), nodeMedianMs: +m.node.toFixed(3), ratio: +(m.node / m.replay).toFixed(3),
    nodeFreshMedianMs: +m.fresh.toFixed(3), freshRatio: +(m.fresh / m.replay).toFixed(3),
    nodeWithDecodingMedianMs: +m.decoded.toFixed(3) }
}

/** One fresh process's best time, measured as replay measures (`--fresh`). */
async function fresh(dir, threads, mode) {
  const fx = await prepareFixture(dir)
  return bestOf(3, (o = {}) => executeBlock({ block: fx.block, state: fx.state, threads, mode, ...o }))
}

module.exports = { compare }

if (require.main === module) {
  const fail = (e) => {
    console.error(e.message)
    process.exitCode = 1
  }
  if (process.argv[2] === '--fresh') {
    const [dir, threads, mode] = process.argv.slice(3)
    fresh(dir, Number(threads), mode).then((ms) => process.stdout.write(String(ms)), fail)
  } else {
    const [dir, threads = '2', mode = 'parallel', rounds = '10'] = process.argv.slice(2)
    compare(dir, Number(threads), mode, Number(rounds)).then((r) => console.log(JSON.stringify(r)), fail)
  }
}
