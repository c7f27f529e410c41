// Cluster replay behind a slow node (`npm run build` first; needs redis-server and postgresql
// installed, and @foundry-rs/anvil, solc, @openzeppelin/contracts, @uniswap/v2-core):
//   node bench/cluster-latency.cjs [--blocks 300] [--latency 20] [--workers 1,2,3] [--rounds 3] [--chunk 25] [--threads 2] [--state proofs|prestate] [--out bench/results/cluster-latency.json]
// Mines a chain of mixed blocks on a local anvil, puts a proxy in front of it that holds every
// HTTP request for a fixed latency, starts Redis and Postgres on free loopback ports, and times
// `parallel-evm cluster work` with 1, 2, 3... worker processes on this machine: the workers are
// started and waiting first, then the range is enqueued in chunks and the clock runs until the
// workers have reported every chunk done (blocks/s; medians of the rounds, worker counts
// alternated). Each run writes into a fresh database on its own queue. Per run it also records
// where each worker's time went (its chunks' wait/execute/write timings, idle time), the node's
// time per request behind the proxy, and how busy the whole machine was. Writes the raw rows as JSON.
const { spawn } = require('node:child_process')
const { mkdirSync, readFileSync, writeFileSync } = require('node:fs')
const { dirname, join } = require('node:path')
const { parseArgs } = require('node:util')

const repo = join(__dirname, '..')
const { latencyProxy, median, runInfo, startAnvil } = require('./support.cjs')
const { mineChain } = require('../dist/bench/anvil-chain.js')
const { startPostgres, startRedis, stopRedisForGood } = require('../dist/bench/servers.js')
const { clusterStatus, enqueueRange } = require('../dist/index.js')

const { values } = parseArgs({
  options: {
    blocks: { type: 'string', default: '300' },
    latency: { type: 'string', default: '20' },
    workers: { type: 'string', default: '1,2,3' },
    rounds: { type: 'string', default: '3' },
    chunk: { type: 'string', default: '25' },
    threads: { type: 'string', default: '2' },
    state: { type: 'string', default: 'proofs' },
    out: { type: 'string', default: join(repo, 'bench', 'results', 'cluster-latency.json') },
  },
})

function startWorkerProcess(redis, queue, rpc, postgres) {
  const args = [join(repo, 'dist', 'cli', 'main.js'), 'cluster', 'work', '--redis', redis, '--queue', queue, '--rpc', rpc, '--postgres', postgres, '--threads', values.threads, '--json']
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  const events = []
  child.stdout.on('data', (d) => {
    out += d
    const lines = out.split('\n')
    out = lines.pop()
    for (const l of lines) if (l.startsWith('{')) events.push(JSON.parse(l))
  })
  child.stderr.on('data', (d) => (err += d))
  const exit = new Promise((r) => child.once('close', (code) => r(code)))
  return { child, exit, events: () => events, ready: () => events.some((e) => e.event === 'ready') || child.exitCode !== null, log: () => `${events.map((e) => JSON.stringify(e)).join('\n')}\n${out}${err}` }
}

/** CPU time a process has used, ms (Linux /proc; undefined elsewhere). */
function cpuMs(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return undefined
  }
}

/** Busy and total CPU time of the whole machine so far, ms (Linux /proc/stat; undefined elsewhere). */
function machineCpuMs() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
    const total = f.reduce((a, b) => a + b, 0) * 10
    return { busy: total - (f[3] + f[4]) * 10, total }
  } catch {
    return undefined
  }
}

async function main() {
  const counts = values.workers.split(',').filter(Boolean).map(Number)
  const latency = Number(values.latency)
  const anvil = await startAnvil()
  const [redis, postgres] = await Promise.all([startRedis(), startPostgres()])
  const proxy = await latencyProxy(anvil.url, latency)
  const rows = []
  try {
    const chain = await mineChain({ rpcUrl: anvil.url, blocks: Number(values.blocks), txsPerBlock: 4, seed: 29 })
    const from = chain.first
    const to = chain.last
    const blocks = Number(to - from + 1n)
    console.error(`mined ${blocks} blocks; ${latency} ms per request`)
    const runs = Object.fromEntries(counts.map((n) => [n, []]))
    let run = 0
    for (let round = 0; round < Number(values.rounds); round++) {
      // Alternating the order: the shared machine's load falls on each count alike.
      for (const n of round % 2 === 0 ? counts : [...counts].reverse()) {
        const queue = `bench-${++run}`
        const database = await postgres.createDatabase(`bench_${run}`)
        const workers = Array.from({ length: n }, () => startWorkerProcess(redis.url, queue, proxy.url, database))
        // Started and connected before the clock runs: what is timed is the replay, not node's start.
        const ready = Date.now() + 30_000
        while (!workers.every((w) => w.ready()) && Date.now() < ready) await new Promise((r) => setTimeout(r, 50))
        const httpBefore = proxy.http
        const [lateBefore, upstreamBefore] = [proxy.lateMs, proxy.upstreamMs]
        const anvilBefore = cpuMs(anvil.pid)
        const machineBefore = machineCpuMs()
        const started = performance.now()
        const { chunks } = await enqueueRange({ redisUrl: redis.url, queue, from, to, chunk: Number(values.chunk), state: values.state, chainId: 31337, hardfork: 'cancun' })
        // The workers' own 'done' lines end the clock (no polling of Redis: that would load the
        // machine it measures and add up to a poll's interval to the shorter runs).
        const done = () => new Set(workers.flatMap((w) => w.events().filter((e) => e.event === 'done').map((e) => e.id))).size
        while (done() < chunks) {
          if (workers.some((w) => w.child.exitCode !== null)) throw new Error(`a worker exited: ${workers.map((w) => w.log()).join('\n')}`)
          await new Promise((r) => setTimeout(r, 5))
        }
        const wallMs = performance.now() - started
        // Per request: how late the proxy's latency timer fired, and the node's own time (ms).
        const requests = Math.max(proxy.http - httpBefore, 1)
        const proxyLateMs = +((proxy.lateMs - lateBefore) / requests).toFixed(2)
        const nodeMs = +((proxy.upstreamMs - upstreamBefore) / requests).toFixed(2)
        const s = await clusterStatus({ redisUrl: redis.url, queue })
        if (s.completed !== chunks || s.failed > 0) throw new Error(`${s.completed} of ${chunks} chunks completed; failed: ${JSON.stringify(s.failedChunks)}`)
        // Chunks that failed and were retried (a deadlock between workers' transactions did that).
        const retried = workers.reduce((n, w) => n + w.events().filter((e) => e.event === 'failed').length, 0)
        const anvilCpuMs = anvilBefore === undefined ? undefined : cpuMs(anvil.pid) - anvilBefore
        const machineAfter = machineCpuMs()
        // Share of the machine's CPU in use during the run (every process: other users' too).
        const machineBusy = machineBefore && machineAfter ? +((machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total)).toFixed(2) : undefined
        // CPU of the worker processes (their start included, a few hundred ms each).
        const workersCpuMs = workers.reduce((n, w) => n + (cpuMs(w.child.pid) ?? 0), 0)
        for (const w of workers) w.child.kill('SIGTERM')
        const codes = await Promise.all(workers.map((w) => w.exit))
        if (codes.some((c) => c !== 0)) throw new Error(`a worker exited with ${codes}: ${workers.map((w) => w.log()).join('\n')}`)
        // Per worker, where its wall time went (the chunks' own timings; idle: between chunks and after the last).
        const perWorker = workers.map((w) => {
          const done = w.events().filter((e) => e.event === 'done')
          const sum = (k) => done.reduce((t, e) => t + (e.timings?.[k] ?? 0), 0)
          const busyMs = done.reduce((t, e) => t + e.ms, 0)
          return { chunks: done.length, busyMs, waitMs: sum('waitMs'), executeMs: sum('executeMs'), writeMs: sum('writeMs'), firstBlockMs: sum('firstBlockMs'), idleMs: Math.round(wallMs - busyMs) }
        })
        const r = { workers: n, wallMs: Math.round(wallMs), blocksPerSecond: +(blocks / (wallMs / 1000)).toFixed(2), httpRequests: proxy.http - httpBefore, proxyLateMs, nodeMs, anvilCpuMs, workersCpuMs, machineBusy, retried, perWorker }
        runs[n].push(r)
        console.error(`${n} worker(s): ${r.wallMs} ms, ${r.blocksPerSecond} blocks/s, ${r.httpRequests} HTTP requests (timer late ${proxyLateMs} ms, node ${nodeMs} ms each), anvil CPU ${anvilCpuMs} ms, workers CPU ${workersCpuMs} ms, machine ${Math.round((machineBusy ?? 0) * 100)}% busy${retried ? `, ${retried} chunk(s) failed and retried` : ''}`)
        for (const w of perWorker) console.error(`  ${w.chunks} chunks: busy ${w.busyMs} (wait ${w.waitMs}, execute ${w.executeMs}, write ${w.writeMs}; first blocks ${w.firstBlockMs}), idle ${w.idleMs} ms`)
      }
    }
    for (const n of counts) {
      const r = runs[n]
      rows.push({ kind: 'cluster', latencyMs: latency, state: values.state, workers: n, blocks, chunk: Number(values.chunk), rounds: r.length, wallMs: median(r.map((x) => x.wallMs)), blocksPerSecond: median(r.map((x) => x.blocksPerSecond)), runs: r })
    }
    const one = rows.find((r) => r.workers === 1)
    if (one) {
      for (const r of rows.filter((x) => x.workers !== 1)) {
        const speedup = +(r.blocksPerSecond / one.blocksPerSecond).toFixed(2)
        rows.push({ kind: 'ratio', latencyMs: latency, workers: r.workers, speedup })
        console.error(`${r.workers} workers: ${speedup}x one worker (medians)`)
      }
    }
  } finally {
    await proxy.stop()
    anvil.stop()
    await Promise.all([stopRedisForGood(redis), postgres.stop()])
  }
  const result = { ...runInfo(), threads: Number(values.threads), rows }
  mkdirSync(dirname(values.out), { recursive: true })
  writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`)
  console.error(`wrote ${values.out}`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
