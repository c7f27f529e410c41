// Tracing benchmark (issue 28): on generated blocks (1,000 ERC-20 transfers, 300 Uniswap V2 swaps)
// and mainnet fixtures, times
//   - traced execution, parallel (2 threads) against sequential tracing (1 thread), per tracer;
//   - untraced execution, sequential and parallel, on this build ("after") and on the build this
//     change started from ("before", `--before <dir>` holding its dist/ and native/), each in its
//     own process, the two alternating.
// Every figure is the median over rounds of alternating calls in one process (a shared machine:
// only ratios taken close together mean something). Raw results go to bench/results/.
// Needs `npm run build`. usage: node --expose-gc bench/trace.cjs [--before /tmp/pevm-before] [--rounds 15]
//   [--fixtures ../shared/fixtures/mainnet] [--blocks 19426587,15537394,...] [--out bench/results/trace-<date>.json]
const { execFileSync, fork } = require('node:child_process')
const { existsSync, mkdirSync, writeFileSync } = require('node:fs')
const { cpus, hostname } = require('node:os')
const { join, resolve } = require('node:path')

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : dflt
}
const TRACERS = [
  { tracer: 'callTracer' },
  { tracer: 'prestateTracer', tracerConfig: { diffMode: true } },
  { tracer: 'flatCallTracer' },
  { tracer: '4byteTracer' },
]

/** A block to measure, built in the measuring process. */
async function loadBlock(dist, spec) {
  const lib = require(join(dist, 'index.js'))
  if (spec.workload) {
    const { cachedWorkload } = require(join(dist, 'bench', 'workloads.js'))
    const g = await cachedWorkload(spec.workload, spec.txs, 1)
    const block = await lib.prepareBlock(g.block, { chain: g.chain })
    const state = await lib.prepareState(g.prestate)
    return { block, state, lib }
  }
  const fx = await lib.prepareFixture(spec.fixture)
  return { block: fx.block, state: fx.state, lib }
}

/** Medians over `rounds` of calls alternating between `variants` (name -> options). */
async function measure(lib, block, state, variants, rounds) {
  const run = (o) => lib.executeBlock({ block, state, ...o })
  const times = Object.fromEntries(Object.keys(variants).map((k) => [k, []]))
  // Process CPU time (all threads): on a machine shared with other work, wall time mostly
  // measures their load; CPU time is what a call cost.
  const cpu = Object.fromEntries(Object.keys(variants).map((k) => [k, []]))
  let stats = {}
  for (const o of Object.values(variants)) await run(o) // warm-up
  for (let r = 0; r < rounds; r++) {
    for (const [name, o] of Object.entries(variants)) {
      // The garbage of earlier calls collected before each one, so that no call pays for
      // another's (with `node --expose-gc`; without it a collection lands wherever V8 decides).
      globalThis.gc?.()
      const t = performance.now()
      const c = process.cpuUsage()
      const res = await run(o)
      times[name].push(performance.now() - t)
      const used = process.cpuUsage(c)
      cpu[name].push((used.user + used.system) / 1000)
      if (o.trace) res.traces.length // the traces parsed, as a user reads them
      stats[name] = { engine: res.stats.engine, mode: res.stats.mode, txs: res.receipts.length }
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, { ms: median(v), bestMs: Math.min(...v), cpuMs: median(cpu[k]), ...stats[k] }]))
}

async function child() {
  process.on('message', async ({ dist, spec, variants, rounds }) => {
    try {
      const { lib, block, state } = await loadBlock(dist, spec)
      process.send({ result: await measure(lib, block, state, variants, rounds) })
    } catch (e) {
      process.send({ error: e.stack || e.message })
    }
  })
}

function inChild(dist, spec, variants, rounds) {
  return new Promise((res, rej) => {
    const c = fork(__filename, ['--child'], { stdio: 'inherit' })
    c.once('message', (m) => {
      c.kill()
      m.error ? rej(new Error(m.error)) : res(m.result)
    })
    c.send({ dist, spec, variants, rounds })
  })
}

async function main() {
  const rounds = Number(opt('rounds', '15'))
  const after = resolve(__dirname, '..', 'dist')
  const before = opt('before')
  const fixtures = resolve(opt('fixtures', join(__dirname, '..', '..', 'shared', 'fixtures', 'mainnet')))
  const blocks = [
    { name: 'erc20 1000', workload: 'erc20', txs: 1000 },
    { name: 'uniswap 300', workload: 'uniswap', txs: 300 },
    ...opt('blocks', '19426587,15537394,12244000,17034869')
      .split(',')
      .filter((b) => existsSync(join(fixtures, b)))
      .map((b) => ({ name: `mainnet ${b}`, fixture: join(fixtures, b) })),
  ]
  const rows = []
  for (const spec of blocks) {
    // Traced: parallel on 2 threads against sequential tracing, per tracer, in one process.
    const variants = { untracedSeq: { mode: 'sequential', threads: 1 }, untracedPar: { mode: 'parallel', threads: 2 } }
    for (const t of TRACERS) {
      const key = t.tracer + (t.tracerConfig ? '+diff' : '')
      variants[`${key}:seq`] = { mode: 'sequential', threads: 1, trace: t }
      variants[`${key}:par`] = { mode: 'parallel', threads: 2, trace: t }
    }
    const traced = await inChild(after, spec, variants, rounds)
    const pick = (v) => ({ ms: v.ms, bestMs: v.bestMs, cpuMs: v.cpuMs })
    const row = { block: spec.name, txs: traced.untracedSeq.txs, untraced: { seq: pick(traced.untracedSeq), par: pick(traced.untracedPar), engine: traced.untracedPar.engine }, traced: {} }
    for (const t of TRACERS) {
      const key = t.tracer + (t.tracerConfig ? '+diff' : '')
      const s = traced[`${key}:seq`]
      const p = traced[`${key}:par`]
      row.traced[key] = {
        seq: pick(s),
        par: pick(p),
        speedup: s.ms / p.ms,
        bestSpeedup: s.bestMs / p.bestMs,
        // What 2 dedicated cores would give if the parallel run never idled: 2 x CPU(seq) / CPU(par).
        cpuSpeedupBound: (2 * s.cpuMs) / p.cpuMs,
        engine: p.engine,
        overSeqUntraced: s.ms / traced.untracedSeq.ms,
      }
    }
    // Untraced before vs after: separate processes, alternating, medians of their medians.
    if (before) {
      const plain = { seq: { mode: 'sequential', threads: 1 }, par: { mode: 'parallel', threads: 2 } }
      const b = { seq: [], par: [], seqCpu: [], parCpu: [] }
      const a = { seq: [], par: [], seqCpu: [], parCpu: [] }
      for (let i = 0; i < 3; i++) {
        for (const [side, dist] of [[b, join(before, 'dist')], [a, after]]) {
          const r = await inChild(dist, spec, plain, rounds)
          side.seq.push(r.seq.ms), side.par.push(r.par.ms), side.seqCpu.push(r.seq.cpuMs), side.parCpu.push(r.par.cpuMs)
        }
      }
      const cmp = (k) => ({ beforeMs: median(b[k]), afterMs: median(a[k]), ratio: median(a[k]) / median(b[k]) })
      row.untracedBeforeAfter = { seq: cmp('seq'), par: cmp('par'), seqCpu: cmp('seqCpu'), parCpu: cmp('parCpu') }
    }
    rows.push(row)
    console.log(JSON.stringify(row))
  }
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: __dirname }).toString().trim()
  const out = opt('out', join(__dirname, 'results', `trace-${new Date().toISOString().slice(0, 10)}.json`))
  mkdirSync(join(out, '..'), { recursive: true })
  const doc = {
    bench: 'trace',
    machine: hostname(),
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    threads: 2,
    rounds,
    commit,
    date: new Date().toISOString(),
    note: 'medians of alternating calls in one process per block; the machine was shared with other agents (compare ratios only)',
    rows,
  }
  writeFileSync(out, JSON.stringify(doc, null, 2) + '\n')
  console.log(`wrote ${out}`)
}

if (process.argv.includes('--child')) child()
else main().catch((e) => {
  console.error(e)
  process.exitCode = 1
})
