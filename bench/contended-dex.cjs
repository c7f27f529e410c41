// Contended DEX blocks from a real node (issue 27: "never slower on today's contended mainnet"):
// anvil mines blocks shaped like today's mainnet (router swaps on a few hot Uniswap V2 pools,
// multi-hop swaps, back-runs, WETH, transfers; ts/bench/dex-blocks.ts) at each contention level;
// each block is loaded back with its pre-state (prestateTracer) and run sequentially, in auto
// mode and in forced parallel mode, in alternating rounds in one process. Per block: the medians,
// the engine auto mode chose and why, re-executions, and the speedups; every run is checked
// against the header and against sequential execution (exit code 1 otherwise).
//
//   npm run build:ts && node bench/contended-dex.cjs [--contention 0.2,0.5,0.8,0.95] [--blocks 3]
//     [--txs 200] [--threads 2] [--rounds 9] [--seed 1] [--out FILE | --no-results] [--save DIR]
// --save DIR also writes each block as a fixture folder (DIR/<contention>-<block>/: block.json,
// prestate.json, chain.json) for `parallel-evm run`, the Rust replay example or another executor.
// The rows go to bench/results/contended-dex.json (--out), the performance docs' contended DEX table.
const { mkdirSync, writeFileSync } = require('node:fs')
const { availableParallelism } = require('node:os')
const { join } = require('node:path')
const { parseArgs } = require('node:util')
const { mineDexBlocks } = require('../dist/bench/dex-blocks.js')
const { loadNodeBlock } = require('../dist/bench/node-block.js')
const { executeNative } = require('../dist/execute.js')
const { headerChecks, headerPassed, sameOutcome } = require('../dist/result.js')
const { median, runInfo, startAnvil } = require('./support.cjs')

const { values } = parseArgs({
  options: {
    contention: { type: 'string', default: '0.2,0.5,0.8,0.95' },
    blocks: { type: 'string', default: '3' },
    txs: { type: 'string', default: '200' },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '9' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string', default: join(__dirname, 'results', 'contended-dex.json') },
    'no-results': { type: 'boolean', default: false },
    save: { type: 'string' },
  },
})
const levels = values.contention.split(',').map(Number)
const [blocks, txs, threads, rounds, seed] = ['blocks', 'txs', 'threads', 'rounds', 'seed'].map((k) => Number(values[k]))
const chain = { chainId: 31337, hardfork: 'cancun' }

const stats = (output) => JSON.parse(output.summary).stats

/** Sequential, auto and forced parallel in rotating order, after one untimed run of each. */
async function measure(block, state) {
  const modes = [
    ['seq', 1, 'sequential'],
    ['auto', threads, 'auto'],
    ['par', threads, 'parallel'],
  ]
  const ms = { seq: [], auto: [], par: [] }
  // CPU time of the whole process (every engine thread): on a busy machine a 2-thread run waits
  // for a second core, and threads × CPU(sequential) / CPU(mode) is what it would gain with both.
  const cpu = { seq: [], auto: [], par: [] }
  const counters = { auto: [], par: [] }
  const outputs = {}
  const failures = []
  for (let r = 0; r <= rounds; r++) {
    for (let i = 0; i < modes.length; i++) {
      const [key, t, mode] = modes[(i + r) % modes.length]
      const start = performance.now()
      const cpuStart = process.cpuUsage()
      const output = await executeNative({ block, state, threads: t, mode })
      const elapsed = performance.now() - start
      const used = process.cpuUsage(cpuStart)
      const v = headerChecks(output).verification
      if (!headerPassed(v)) failures.push(`${key}: header ${JSON.stringify(v)}`)
      if (outputs.seq && key !== 'seq' && !sameOutcome(outputs.seq, output)) failures.push(`${key}: differs from sequential`)
      outputs[key] = output
      if (r === 0) continue
      ms[key].push(elapsed)
      cpu[key].push((used.user + used.system) / 1000)
      if (key !== 'seq') counters[key].push(stats(output))
    }
  }
  return { ms, cpu, counters, outputs, failures }
}

async function main() {
  if (threads > availableParallelism()) console.warn(`warning: ${threads} threads on ${availableParallelism()} cores`)
  const rows = []
  for (const contention of levels) {
    const anvil = await startAnvil({ accounts: txs + 8 })
    try {
      const mined = await mineDexBlocks({ rpcUrl: anvil.url, blocks, txsPerBlock: txs, contention, seed: seed + Math.round(contention * 1000) })
      for (const b of mined.blocks) {
        const { block, state, rpcBlock, prestate } = await loadNodeBlock({ rpcUrl: anvil.url, blockNumber: b.number, chain })
        if (values.save) {
          const dir = join(values.save, `${contention}-${b.number}`)
          mkdirSync(dir, { recursive: true })
          writeFileSync(join(dir, 'block.json'), JSON.stringify(rpcBlock))
          writeFileSync(join(dir, 'prestate.json'), JSON.stringify(prestate))
          writeFileSync(join(dir, 'chain.json'), JSON.stringify(chain))
        }
        const m = await measure(block, state)
        const auto = stats(m.outputs.auto)
        const par = stats(m.outputs.par)
        const [seqMs, autoMs, parMs] = ['seq', 'auto', 'par'].map((k) => +median(m.ms[k]).toFixed(3))
        const row = {
          kind: 'block',
          block: Number(b.number),
          contention,
          txs: b.transactions,
          hotTxs: b.hot,
          reverted: b.reverted,
          kinds: b.kinds,
          gasUsed: Number(b.gasUsed),
          seqMs,
          autoMs,
          autoMode: auto.mode,
          autoEngine: auto.engine,
          autoReason: auto.reason,
          autoReexecutions: median(m.counters.auto.map((c) => c.reexecutions)),
          parMs,
          parEngine: par.engine,
          parReexecutions: median(m.counters.par.map((c) => c.reexecutions)),
          parReexecutionsMax: Math.max(...m.counters.par.map((c) => c.reexecutions)),
          // Block-STM's other signs of contention, medians over the rounds.
          parValidationAborts: median(m.counters.par.map((c) => c.validationAborts)),
          parDependencyWaits: median(m.counters.par.map((c) => c.dependencyWaits)),
          autoSpeedup: +(seqMs / autoMs).toFixed(3),
          parSpeedup: +(seqMs / parMs).toFixed(3),
          cpuMs: Object.fromEntries(['seq', 'auto', 'par'].map((k) => [k, +median(m.cpu[k]).toFixed(3)])),
          autoCpuBound: +((auto.mode === 'sequential' ? 1 : threads) * (median(m.cpu.seq) / median(m.cpu.auto))).toFixed(3),
          parCpuBound: +((threads * median(m.cpu.seq)) / median(m.cpu.par)).toFixed(3),
          verified: m.failures.length === 0,
          ...(m.failures.length ? { failures: [...new Set(m.failures)] } : {}),
        }
        rows.push(row)
        if (!row.verified) process.exitCode = 1
        console.log(
          `block ${row.block} (contention ${contention}): ${row.txs} txs, ${row.hotTxs} on hot pools, ${row.reverted} reverted; ` +
            `seq ${seqMs} ms, auto ${autoMs} ms (${row.autoMode}/${row.autoEngine}${row.autoReason ? `: ${row.autoReason}` : ''}, ${row.autoReexecutions} re-exec) ${row.autoSpeedup}x, ` +
            `parallel ${parMs} ms (${row.parReexecutions} re-exec, max ${row.parReexecutionsMax}) ${row.parSpeedup}x; CPU bound auto ${row.autoCpuBound}x, parallel ${row.parCpuBound}x; ${row.verified ? 'verified' : `FAILED: ${row.failures.join('; ')}`}`,
        )
      }
    } finally {
      anvil.stop()
    }
  }
  const slower = rows.filter((r) => r.autoSpeedup < 1)
  console.log(`\nauto slower than sequential on ${slower.length}/${rows.length} blocks${slower.length ? `: ${slower.map((r) => `${r.block}@${r.contention} ${r.autoSpeedup}x (${r.autoEngine})`).join(', ')}` : ''}`)
  if (!values['no-results']) {
    const settings = { contention: levels, blocks, txs, threads, rounds, seed, via: 'executeBlock (Node), anvil blocks loaded with the prestateTracer' }
    writeFileSync(values.out, `${JSON.stringify({ bench: 'contended-dex', ...runInfo(), settings, rows }, null, 1)}\n`)
    console.error(`wrote ${values.out}`)
  }
}

main().catch((e) => {
  console.error(e.stack ?? e.message)
  process.exitCode = 1
})
