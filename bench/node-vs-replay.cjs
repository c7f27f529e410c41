// Node `executeBlock` vs the Rust replay example on the same block, threads and mode. Both sides
// measure the same way, each in its own steady state: `perRound` rounds alternating sequential
// execution and the mode, timing the mode; each side reports the median and the best of those
// times. Replay runs with `--rounds`, in a process of its own per round. Node runs in one
// long-lived measuring process (`node`), warmed up first, and again in a fresh process per round
// (`fresh`, cold). The sides alternate `rounds` times and the summary takes medians over rounds
// (on a shared machine only ratios measured close together mean something).
//
// The measuring Node process never starts a process itself: a fork write-protects all of the
// parent's memory, and the parent then takes a page fault on the first write to each page of its
// heap (300-450 a call on a 1,400-transaction block for the next ~100 calls, +20-30% of its time)
// — a cost of the harness, not of executeBlock. This orchestrating process starts them instead.
//
// Needs `npm run build` and `cargo build --release -p parallel-evm-core --example replay`.
// Any fixture folder works, including generated blocks saved with `parallel-evm bench --save-blocks`.
// usage: node bench/node-vs-replay.cjs <fixture dir> [threads=2] [mode=parallel] [rounds=5] [perRound=50]
// (also the `napi` suite of bench/suite.cjs). Writes its raw result under bench/results/.
const { execFileSync, fork } = require('node:child_process')
const { existsSync } = require('node:fs')
const { join } = require('node:path')

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

/** A prepared fixture and its executeBlock call, in the process that measures. */
async function prepared(dir, threads, mode) {
  const { executeBlock, prepareFixture } = require('../dist/index.js')
  const fx = await prepareFixture(dir)
  const run = (o = {}) => executeBlock({ block: fx.block, state: fx.state, threads, mode, ...o })
  return { fx, run }
}

/** Untimed calls for `ms` (and at least `pairs` pairs, at most 2,000). */
async function busy(run, ms, pairs) {
  const until = performance.now() + ms
  for (let i = 0; i < 2000 && (i < pairs || performance.now() < until); i++) {
    await run({ threads: 1, mode: 'sequential' })
    await run()
  }
}

/** The long-lived measuring process (`--worker`): measures on request, never forks. */
async function worker(dir, threads, mode, perRound) {
  const { fx, run } = await prepared(dir, threads, mode)
  // Results are freed by V8's collector, which runs after ~64 MB of them (reported as external
  // memory): until the heap has grown to hold that many, calls map fresh pages. 2 s of calls get
  // past that, as a long-running host is.
  await busy(run, 2000, perRound)
  process.on('message', async ({ n, decode }) => {
    try {
      // Idle while the other sides ran, calls are slower for their first ~100 ms (0.8 -> 1.2 ms on
      // 1,000 transfers; the CPUs' clocks, as far as can be seen from inside this VM). Replay's
      // process is busy loading its fixture before it times; this is the same.
      await busy(run, 250, 1)
      // With decoding: every receipt, log and diff entry into bigint/viem types. In rounds of
      // their own, as the garbage they leave (~10 ms of objects per call) is collected during
      // the calls that follow and would be billed to them.
      const call = decode ? async (o) => { const res = await run(o); return [res.receipts, res.stateDiff] } : run
      const faults = process.resourceUsage().minorPageFault
      const r = await steady(n, call)
      process.send({ ...r, faults: (process.resourceUsage().minorPageFault - faults) / (2 * n + 2) })
    } catch (e) {
      process.send({ error: e.message })
    }
  })
  process.send({ block: fx.block.number, txs: fx.block.txCount })
}

/** Medians over `rounds` of each side's median and best time, and their ratios. */
async function compare(dir, threads = 2, mode = 'parallel', rounds = 5, perRound = 50) {
  if (!existsSync(replayBinary)) throw new Error(`${replayBinary} is missing: cargo build --release -p parallel-evm-core --example replay`)
  const child = fork(__filename, ['--worker', dir, String(threads), mode, String(perRound)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const exited = new Promise((_, reject) => child.once('exit', (code) => reject(new Error(`the measuring process exited (${code})`))))
  exited.catch(() => {})
  const reply = () => Promise.race([new Promise((resolve) => child.once('message', resolve)), exited]).then((m) => {
    if (m.error) throw new Error(m.error)
    return m
  })
  try {
    const info = await reply()
    const sides = { replay: [], node: [], fresh: [], decoded: [] }
    for (let r = 0; r < rounds; r++) {
      const line = JSON.parse(execFileSync(replayBinary, ['--threads', String(threads), '--mode', mode, '--rounds', String(perRound), dir], { encoding: 'utf8' }))
      sides.replay.push({ median: line.parMedianMs, best: line.parMs })
      child.send({ n: perRound })
      sides.node.push(await reply())
      sides.fresh.push(JSON.parse(execFileSync(process.execPath, [__filename, '--fresh', dir, String(threads), mode, String(perRound)], { encoding: 'utf8' })))
    }
    for (let r = 0; r < rounds; r++) {
      child.send({ n: perRound, decode: true })
      sides.decoded.push(await reply())
    }
    const m = Object.fromEntries(Object.entries(sides).map(([k, v]) => [k, { median: median(v.map((x) => x.median)), best: median(v.map((x) => x.best)) }]))
    const faults = median(sides.node.map((x) => x.faults))
    const ms = (x) => +x.toFixed(3)
    const ratio = (a, b) => +(a / b).toFixed(3)
    return { block: info.block, txs: info.txs, threads, mode, rounds, perRound,
      replayMedianMs: ms(m.replay.median), nodeMedianMs: ms(m.node.median), ratio: ratio(m.node.median, m.replay.median),
      replayBestMs: ms(m.replay.best), nodeBestMs: ms(m.node.best), bestRatio: ratio(m.node.best, m.replay.best),
      nodeFaultsPerCall: +faults.toFixed(1),
      nodeFreshMedianMs: ms(m.fresh.median), freshRatio: ratio(m.fresh.median, m.replay.median),
      nodeWithDecodingMedianMs: ms(m.decoded.median) }
  } finally {
    child.removeAllListeners('exit')
    child.kill()
  }
}

/** One fresh process's times, measured as replay measures (`--fresh`): cold, no warm-up. */
async function fresh(dir, threads, mode, perRound) {
  const { run } = await prepared(dir, threads, mode)
  return steady(perRound, run)
}

module.exports = { compare, replayBinary }

if (require.main === module) {
  const fail = (e) => {
    console.error(e.message)
    process.exitCode = 1
  }
  const [flag, ...rest] = process.argv.slice(2)
  if (flag === '--fresh') {
    const [dir, threads, mode, perRound] = rest
    fresh(dir, Number(threads), mode, Number(perRound)).then((r) => process.stdout.write(JSON.stringify(r)), fail)
  } else if (flag === '--worker') {
    const [dir, threads, mode, perRound] = rest
    worker(dir, Number(threads), mode, Number(perRound)).catch((e) => {
      process.send({ error: e.message })
      process.exit(1)
    })
  } else {
    const [dir, threads = '2', mode = 'parallel', rounds = '5', perRound = '50'] = process.argv.slice(2)
    compare(dir, Number(threads), mode, Number(rounds), Number(perRound)).then((r) => {
      console.log(JSON.stringify(r))
      // The raw result beside the other benchmarks' (bench/results/napi-<date>.json).
      const { resultsFile, writeResults } = require('../dist/bench/results.js')
      const name = require('node:path').basename(dir)
      const file = resultsFile('napi', [Number(threads)], { rounds: Number(rounds), perRound: Number(perRound), command: process.argv.slice(2).join(' ') }, [{ name, ...r }])
      console.error(`raw results: ${writeResults(join(__dirname, 'results'), file)}`)
    }, fail)
  }
}
