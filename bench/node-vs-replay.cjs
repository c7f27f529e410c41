// Node `executeBlock` vs the Rust replay example on the same block, threads and mode. Both sides
// measure the same way, each in its own steady state: one untimed run of sequential execution
// and of the mode, then `perRound` rounds alternating the two, timing the mode; each side reports
// the median and the best of those times (replay with `--rounds`, in a process of its own; Node
// in this long-lived process, and again in a fresh process, `fresh`). The two sides alternate
// `rounds` times and the summary takes medians over rounds (on a shared machine only ratios
// measured close together mean something). Needs `npm run build` and
// `cargo build --release -p parallel-evm-core --example replay`.
// Any fixture folder works, including generated blocks saved with `parallel-evm bench --save-blocks`.
// usage: node bench/node-vs-replay.cjs <fixture dir> [threads=2] [mode=parallel] [rounds=5] [perRound=50]
// (also the `napi` suite of bench/suite.cjs)
const { execFileSync } = require('node:child_process')
const { existsSync } = require('node:fs')
const { join } = require('node:path')
const { executeBlock, prepareFixture } = require('../dist/index.js')

const replayBinary = join(__dirname, '..', 'target', 'release', 'examples', 'replay')
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** As `replay --rounds n` measures: the median and best time of `run` over `n` rounds. */
async function steady(n, run) {
  const seq = () => run({ threads: 1, mode: 'sequential' })
  await seq()
  await run()
  const ms = []
  for (let i = 0; i < n; i++) {
    await seq()
    const t = performance.now()
    await run()
    ms.push(performance.now() - t)
  }
  return { median: median(ms), best: Math.min(...ms) }
}

/** Medians over `rounds` of each side's median and best time, and their ratios. */
async function compare(dir, threads = 2, mode = 'parallel', rounds = 5, perRound = 50) {
  if (!existsSync(replayBinary)) throw new Error(`${replayBinary} is missing: cargo build --release -p parallel-evm-core --example replay`)
  const fx = await prepareFixture(dir)
  const run = (o = {}) => executeBlock({ block: fx.block, state: fx.state, threads, mode, ...o })
  const sides = { replay: [], node: [], fresh: [], decoded: [] }
  for (let r = 0; r < rounds; r++) {
    const line = JSON.parse(execFileSync(replayBinary, ['--threads', String(threads), '--mode', mode, '--rounds', String(perRound), dir], { encoding: 'utf8' }))
    sides.replay.push({ median: line.parMedianMs, best: line.parMs })
    sides.node.push(await steady(perRound, run))
    sides.fresh.push(JSON.parse(execFileSync(process.execPath, [__filename, '--fresh', dir, String(threads), mode, String(perRound)], { encoding: 'utf8' })))
  }
  // Including the decoding of every receipt, log and diff entry into bigint/viem types; in rounds
  // of their own, as the garbage they leave (~10 ms of objects per call) is collected during the
  // calls that follow and would be billed to them.
  for (let r = 0; r < rounds; r++) {
    sides.decoded.push(await steady(perRound, async (o) => { const res = await run(o); return [res.receipts, res.stateDiff] }))
  }
  const m = Object.fromEntries(Object.entries(sides).map(([k, v]) => [k, { median: median(v.map((x) => x.median)), best: median(v.map((x) => x.best)) }]))
  const ms = (x) => +x.toFixed(3)
  const ratio = (a, b) => +(a / b).toFixed(3)
  return { block: fx.block.number, txs: fx.block.txCount, threads, mode, rounds, perRound,
    replayMedianMs: ms(m.replay.median), nodeMedianMs: ms(m.node.median), ratio: ratio(m.node.median, m.replay.median),
    replayBestMs: ms(m.replay.best), nodeBestMs: ms(m.node.best), bestRatio: ratio(m.node.best, m.replay.best),
    nodeFreshMedianMs: ms(m.fresh.median), freshRatio: ratio(m.fresh.median, m.replay.median),
    nodeWithDecodingMedianMs: ms(m.decoded.median) }
}

/** One fresh process's steady times, measured as replay measures (`--fresh`). */
async function fresh(dir, threads, mode, perRound) {
  const fx = await prepareFixture(dir)
  return steady(perRound, (o = {}) => executeBlock({ block: fx.block, state: fx.state, threads, mode, ...o }))
}

module.exports = { compare }

if (require.main === module) {
  const fail = (e) => {
    console.error(e.message)
    process.exitCode = 1
  }
  if (process.argv[2] === '--fresh') {
    const [dir, threads, mode, perRound] = process.argv.slice(3)
    fresh(dir, Number(threads), mode, Number(perRound)).then((r) => process.stdout.write(JSON.stringify(r)), fail)
  } else {
    const [dir, threads = '2', mode = 'parallel', rounds = '5', perRound = '50'] = process.argv.slice(2)
    compare(dir, Number(threads), mode, Number(rounds), Number(perRound)).then((r) => console.log(JSON.stringify(r)), fail)
  }
}
