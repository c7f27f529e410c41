// Issue 28's bar in one run: traced execution on 2 threads against sequential tracing (and
// against a node's in-order tracing), and untraced execution before and after a change, on the
// generated blocks (1,000 ERC-20 transfers, 300 Uniswap V2 swaps, seed 1), with the Rust example
// crates/core/examples/trace.rs built twice: this one, and the commit before the change with
// this example copied in (the older example did not time untraced parallel execution). The two
// binaries alternate, `--repeat` processes each; every figure is the median of their medians.
//
//   mkdir /tmp/pevm-before && git archive <base commit> | tar -x -C /tmp/pevm-before
//   cp crates/core/examples/trace.rs /tmp/pevm-before/crates/core/examples/
//   # the example sets mimalloc's purge delay as the addon does: its dev-dependency too
//   grep -q libmimalloc-sys /tmp/pevm-before/crates/core/Cargo.toml || sed -i '/^mimalloc = /a libmimalloc-sys = { version = "0.1", default-features = false, features = ["v2", "extended"] }' /tmp/pevm-before/crates/core/Cargo.toml
//   # its own target folder: cargo names both builds' artifacts alike and would mix them
//   (cd /tmp/pevm-before && CARGO_TARGET_DIR=/tmp/pevm-before-target cargo build --release -p parallel-evm-core --example trace)
//   cargo build --release -p parallel-evm-core --example trace
//   node dist/cli/main.js generate erc20 /tmp/gen --txs 1000 && node dist/cli/main.js generate uniswap /tmp/gen --txs 300
//   node bench/trace-bar.cjs --before /tmp/pevm-before-target/release/examples/trace \
//     --after target/release/examples/trace --blocks /tmp/gen/erc20-1000-1,/tmp/gen/uniswap-300-1
//
// Options: --tracer callTracer (default), --runs 9 (rounds per process), --streak 8 (traced runs
// in a row, back to back), --repeat 3,
// --out FILE (default bench/results/trace-bar.json, the performance docs' tracing table).
const { execFileSync } = require('node:child_process')
const { writeFileSync } = require('node:fs')
const { basename, join } = require('node:path')
const { median, runInfo } = require('./support.cjs')

const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : dflt
}

const before = opt('before')
const after = opt('after', 'target/release/examples/trace')
const blocks = opt('blocks', '/tmp/gen/erc20-1000-1,/tmp/gen/uniswap-300-1').split(',')
const tracer = opt('tracer', 'callTracer')
const runs = opt('runs', '9')
const streak = opt('streak', '8')
const repeat = Number(opt('repeat', '3'))

/** One process of the example on `block`: its JSON line. */
function measure(bin, block) {
  const out = execFileSync(bin, ['--threads', '2', '--runs', runs, '--streak', streak, '--tracer', tracer, block], { encoding: 'utf8' })
  return JSON.parse(out.trim().split('\n').pop())
}

/** Medians over processes of the back-to-back figures (`null` from an example without them). */
function backToBack(lines) {
  const runs = lines.map((x) => x.backToBack).filter(Boolean)
  if (runs.length === 0) return null
  return {
    streak: runs[0].streak,
    tracedSeqMs: median(runs.map((r) => r.tracedSeqMs)),
    tracedParMs: median(runs.map((r) => r.tracedParMs)),
    speedup: median(runs.map((r) => r.tracedSeqMs / r.tracedParMs)),
    cpuSpeedupBound: median(runs.map((r) => (2 * r.cpu.tracedSeqMs) / r.cpu.tracedParMs)),
  }
}

const rows = []
for (const block of blocks) {
  const got = { before: [], after: [] }
  for (let r = 0; r < repeat; r++) {
    if (before) got.before.push(measure(before, block))
    got.after.push(measure(after, block))
  }
  const m = (side, f) => median(got[side].map(f))
  const a = (f) => m('after', f)
  const row = {
    block,
    tracer,
    engine: got.after[0].engine,
    tracedSeqMs: a((x) => x.tracedSeqMs),
    tracedParMs: a((x) => x.tracedParMs),
    inOrderMs: a((x) => x.inOrderMs),
    // The bar: traced parallel (2 threads) over sequential tracing (our sequential mode, same
    // outputs), and over a node's in-order tracing (traces only: no receipts or diff).
    speedup: a((x) => x.tracedSeqMs / x.tracedParMs),
    speedupOverInOrder: a((x) => x.inOrderMs / x.tracedParMs),
    cpuMs: { tracedSeq: a((x) => x.cpu.tracedSeqMs), tracedPar: a((x) => x.cpu.tracedParMs), inOrder: a((x) => x.cpu.inOrderMs) },
    // What 2 dedicated cores would give if the parallel run never idled: 2 x CPU(seq) / CPU(par).
    cpuSpeedupBound: a((x) => (2 * x.cpu.tracedSeqMs) / x.cpu.tracedParMs),
    // The same traced runs back to back (`--streak` of each mode in a row), as a traced range
    // replay runs its blocks, one engine call after another.
    backToBack: backToBack(got.after),
    untracedAfter: {
      seqMs: a((x) => x.untracedMs),
      parMs: a((x) => x.untracedParMs),
      seqCpuMs: a((x) => x.cpu.untracedMs),
      parCpuMs: a((x) => x.cpu.untracedParMs),
    },
  }
  if (before) {
    const b = (f) => m('before', f)
    row.untracedBefore = {
      seqMs: b((x) => x.untracedMs),
      parMs: b((x) => x.untracedParMs),
      seqCpuMs: b((x) => x.cpu.untracedMs),
      parCpuMs: b((x) => x.cpu.untracedParMs),
    }
    // The bar itself on the binary before the change, from the same alternating processes.
    row.tracedBefore = {
      tracedSeqMs: b((x) => x.tracedSeqMs),
      tracedParMs: b((x) => x.tracedParMs),
      speedup: b((x) => x.tracedSeqMs / x.tracedParMs),
      cpuSpeedupBound: b((x) => (2 * x.cpu.tracedSeqMs) / x.cpu.tracedParMs),
      backToBack: backToBack(got.before),
    }
    // Above 1: slower after the change.
    row.untracedAfterOverBefore = Object.fromEntries(
      Object.keys(row.untracedBefore).map((k) => [k.replace('Ms', ''), row.untracedAfter[k] / row.untracedBefore[k]]),
    )
  }
  rows.push(row)
  console.log(JSON.stringify(row))
}
const out = opt('out', join(__dirname, 'results', 'trace-bar.json'))
writeFileSync(out, `${JSON.stringify({ bench: 'trace-bar', ...runInfo(), runs: Number(runs), streak: Number(streak), repeat, rows: rows.map((r) => ({ kind: 'trace', ...r, block: basename(r.block) })) }, null, 1)}\n`)
console.error(`wrote ${out}`)
