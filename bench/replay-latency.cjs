// Range replay behind a slow node (`npm run build` first; needs @foundry-rs/anvil, solc,
// @openzeppelin/contracts and @uniswap/v2-core):
//   node bench/replay-latency.cjs [--blocks 150] [--latency 5,20] [--rounds 3] [--prefetch-sweep 0,1,2,4,8,16] [--rss 200,2000] [--rss-rounds 1] [--out bench/results/replay-latency.json]
// (an empty list skips a part: --latency '' --prefetch-sweep '' measures RSS alone)
// Mines a chain of mixed blocks on a local anvil, puts a proxy in front of it that holds every
// HTTP request for a fixed latency, and times `parallel-evm replay --state proofs` (prefetch and
// carried state on) against the same range with `--prefetch 0 --no-carry` (each block fetched at
// its turn, its whole pre-state every time): wall time, RPC calls, blocks/s, Mgas/s (medians of
// the rounds, alternating the two). Then peak RSS of a long replay against a short one of the same
// chain (no proxy). Writes the raw rows as JSON.
const { execFileSync, spawn } = require('node:child_process')
const { mkdirSync, writeFileSync } = require('node:fs')
const { availableParallelism } = require('node:os')
const { dirname, join } = require('node:path')
const { parseArgs } = require('node:util')

const repo = join(__dirname, '..')
const { latencyProxy, median, runInfo, startAnvil } = require('./support.cjs')
const { mineChain } = require('../dist/bench/anvil-chain.js')

const { values } = parseArgs({
  options: {
    blocks: { type: 'string', default: '150' },
    latency: { type: 'string', default: '5,20' },
    rounds: { type: 'string', default: '3' },
    'prefetch-sweep': { type: 'string', default: '0,1,2,4,8,16' },
    rss: { type: 'string', default: '200,2000' },
    'rss-rounds': { type: 'string', default: '1' },
    threads: { type: 'string', default: String(Math.min(availableParallelism(), 8)) },
    out: { type: 'string', default: join(repo, 'bench', 'results', 'replay-latency.json') },
  },
})
const list = (v) => (v ? v.split(',').filter(Boolean).map(Number) : [])




/** One CLI replay; its summary line, plus the proxy's counts. */
function replay(url, range, extra) {
  return new Promise((resolve, reject) => {
    const args = [join(repo, 'dist', 'cli', 'main.js'), 'replay', '--rpc', url, range, '--state', 'proofs', '--hardfork', 'cancun', '--chain-id', '31337', '--threads', values.threads, '--json', ...extra]
    const child = spawn(process.execPath, args)
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('close', (code) => {
      const lines = out.trim().split('\n').map((l) => JSON.parse(l))
      const summary = lines.at(-1).summary
      if (code !== 0 || !summary || summary.failed !== 0) return reject(new Error(`replay ${extra.join(' ')} failed (${code}): ${err}${out.slice(-500)}`))
      resolve(summary)
    })
  })
}

/** Peak RSS of a replay of `range` in its own process (MiB), through the library. */
function peakRss(url, from, to) {
  const script = `
    const { replayBlocks } = require(${JSON.stringify(join(repo, 'dist', 'index.js'))})
    ;(async () => {
      let n = 0, executeMs = 0, engineMs = 0, rounds = 0
      for await (const b of replayBlocks({ rpcUrl: ${JSON.stringify(url)}, from: ${from}n, to: ${to}n, state: 'proofs', chain: { chainId: 31337, hardfork: 'cancun' }, chainId: 31337, threads: ${values.threads} })) {
        if (!b.verification.gasUsed || !b.verification.receiptsRoot) throw new Error('block ' + b.number + ' failed')
        n++
        executeMs += b.timings.executeMs
        engineMs += b.stats.totalUs / 1000
        rounds += b.replay.rounds
      }
      // executeMs - engineMs: what a block costs around the engine's own run (merging, the call's
      // round trip through the JS thread, rounds that missed keys).
      console.log(JSON.stringify({ blocks: n, maxRssMiB: process.resourceUsage().maxRSS / 1024, executeMsPerBlock: executeMs / n, engineMsPerBlock: engineMs / n, roundsPerBlock: rounds / n }))
    })().catch((e) => { console.error(e); process.exit(1) })`
  const t = performance.now()
  const r = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', maxBuffer: 1 << 20 }).trim())
  return { ...r, wallMs: Math.round(performance.now() - t) }
}


async function main() {
  const blocks = Number(values.blocks)
  const rssSizes = list(values.rss)
  const mineBlocks = Math.max(blocks, ...rssSizes)
  const anvil = await startAnvil()
  const proxy = await latencyProxy(anvil.url)
  const rows = []
  try {
    let t = performance.now()
    const chain = await mineChain({ rpcUrl: anvil.url, blocks: mineBlocks, txsPerBlock: 12, seed: 25 })
    console.error(`mined ${chain.last} blocks (${chain.transactions} transactions in the mixed part) in ${((performance.now() - t) / 1000).toFixed(1)} s`)
    const from = chain.first
    const to = chain.first + BigInt(blocks) - 1n
    const range = `${from}..${to}`
    const configs = [
      { name: 'replay', extra: [] },
      { name: 'prefetch 0, no carry', extra: ['--prefetch', '0', '--no-carry'] },
    ]
    for (const latency of list(values.latency)) {
      proxy.latency = latency
      const runs = Object.fromEntries(configs.map((c) => [c.name, []]))
      for (let round = 0; round < Number(values.rounds); round++) {
        for (const c of configs) {
          proxy.http = 0
          proxy.calls = 0
          const s = await replay(proxy.url, range, c.extra)
          runs[c.name].push({ ...s, httpRequests: proxy.http, proxyCalls: proxy.calls })
        }
      }
      for (const c of configs) {
        const r = runs[c.name]
        const row = {
          kind: 'latency',
          latencyMs: latency,
          config: c.name,
          args: c.extra.join(' '),
          blocks,
          rounds: r.length,
          wallMs: median(r.map((x) => x.wallMs)),
          rpcCalls: median(r.map((x) => x.rpcCalls)),
          httpRequests: median(r.map((x) => x.httpRequests)),
          blocksPerSecond: median(r.map((x) => x.blocksPerSecond)),
          mgasPerSecond: median(r.map((x) => x.mgasPerSecond)),
          verified: Math.min(...r.map((x) => x.verified)),
          runs: r,
        }
        rows.push(row)
        console.error(`${latency} ms  ${c.name.padEnd(22)} ${String(row.wallMs).padStart(8)} ms  ${String(row.rpcCalls).padStart(6)} calls  ${row.blocksPerSecond} blocks/s  ${row.mgasPerSecond} Mgas/s  ${row.verified}/${blocks} verified`)
      }
      const [fast, slow] = configs.map((c) => rows.find((x) => x.kind === 'latency' && x.latencyMs === latency && x.config === c.name))
      const ratio = { kind: 'ratio', latencyMs: latency, speedup: +(slow.wallMs / fast.wallMs).toFixed(2), callsRatio: +(fast.rpcCalls / slow.rpcCalls).toFixed(3) }
      rows.push(ratio)
      console.error(`${latency} ms  replay is ${ratio.speedup}x faster with ${ratio.callsRatio}x the RPC calls`)
    }
    const sweep = list(values['prefetch-sweep'])
    if (sweep.length > 0) {
      proxy.latency = Math.max(...list(values.latency))
      for (const p of sweep) {
        const s = await replay(proxy.url, range, ['--prefetch', String(p)])
        rows.push({ kind: 'prefetch', latencyMs: proxy.latency, prefetch: p, wallMs: s.wallMs, rpcCalls: s.rpcCalls, blocksPerSecond: s.blocksPerSecond })
        console.error(`prefetch ${String(p).padStart(2)} at ${proxy.latency} ms: ${s.wallMs} ms, ${s.blocksPerSecond} blocks/s`)
      }
    }
    const rssRuns = Object.fromEntries(rssSizes.map((n) => [n, []]))
    // Alternating the sizes: the machine's state (other processes, page cache) is shared alike.
    for (let round = 0; round < Number(values['rss-rounds']); round++) {
      for (const n of rssSizes) {
        const r = peakRss(anvil.url, chain.first, chain.first + BigInt(n) - 1n)
        rssRuns[n].push(r)
        console.error(`${n} blocks: peak RSS ${r.maxRssMiB.toFixed(1)} MiB (${r.wallMs} ms)`)
      }
    }
    for (const n of rssSizes) {
      const runs = rssRuns[n]
      rows.push({ kind: 'rss', blocks: n, maxRssMiB: median(runs.map((r) => r.maxRssMiB)), rounds: runs.length, runs })
    }
    if (rssSizes.length === 2) {
      const [a, b] = rows.filter((r) => r.kind === 'rss')
      rows.push({ kind: 'rss-ratio', ratio: +(b.maxRssMiB / a.maxRssMiB).toFixed(3) })
      console.error(`peak RSS ${b.blocks} vs ${a.blocks} blocks (medians): ${(b.maxRssMiB / a.maxRssMiB).toFixed(3)}x`)
    }
  } finally {
    await proxy.stop()
    anvil.stop()
  }
  const result = { ...runInfo(), threads: Number(values.threads), rows }
  mkdirSync(dirname(values.out), { recursive: true })
  writeFileSync(values.out, JSON.stringify(result, null, 2) + '\n')
  console.error(`wrote ${values.out}`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
