// Shared by the latency benchmarks: a local anvil, and a proxy that holds every JSON-RPC request
// a fixed time before forwarding it (a remote node's round trip) and counts them.
const { execFileSync, spawn } = require('node:child_process')
const { createServer } = require('node:http')
const { cpus, loadavg } = require('node:os')
const { dirname, join } = require('node:path')

const repo = join(__dirname, '..')

function anvilBinary() {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch
  return join(dirname(require.resolve(`@foundry-rs/anvil-${process.platform}-${arch}/package.json`, { paths: [repo] })), 'bin', 'anvil')
}

/** anvil on a loopback port (Cancun, chain 31337) with `accounts` unlocked dev accounts. */
async function startAnvil({ accounts = 20 } = {}) {
  const port = 20000 + Math.floor(Math.random() * 20000)
  const child = spawn(anvilBinary(), ['--host', '127.0.0.1', '--port', String(port), '--hardfork', 'cancun', '--chain-id', '31337', '--accounts', String(accounts), '--silent'], { stdio: 'ignore' })
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 300; i++) {
    try {
      await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' })
      return { url, pid: child.pid, stop: () => child.kill() }
    } catch {
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  child.kill()
  throw new Error('anvil did not start')
}

/** Holds every HTTP request `latency` ms before forwarding it; counts requests and JSON-RPC calls. */
async function latencyProxy(target, latency = 0) {
  const proxy = { latency, http: 0, calls: 0, lateMs: 0, upstreamMs: 0, url: '' }
  const server = createServer((req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', async () => {
      const body = Buffer.concat(chunks)
      proxy.http++
      try {
        const parsed = JSON.parse(body.toString('utf8'))
        proxy.calls += Array.isArray(parsed) ? parsed.length : 1
      } catch {}
      const held = performance.now()
      await new Promise((r) => setTimeout(r, proxy.latency))
      // How late the timer fired (a busy machine) and how long the node took, summed.
      proxy.lateMs += performance.now() - held - proxy.latency
      try {
        const asked = performance.now()
        const upstream = await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
        const text = await upstream.text()
        proxy.upstreamMs += performance.now() - asked
        res.writeHead(upstream.status, { 'content-type': 'application/json' })
        res.end(text)
      } catch {
        res.destroy()
      }
    })
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  proxy.url = `http://127.0.0.1:${server.address().port}`
  proxy.stop = () => new Promise((r) => server.close(r))
  return proxy
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** Where and when a result was measured, for the head of a results file (the note: PARALLEL_EVM_BENCH_NOTE). */
function runInfo() {
  let commit = 'unknown'
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repo, encoding: 'utf8' }).trim()
  } catch {}
  return {
    machine: `${process.platform}-${process.arch}, ${cpus().length} cores, node ${process.version}`,
    cpu: cpus()[0]?.model ?? 'unknown',
    commit,
    date: new Date().toISOString(),
    note: process.env.PARALLEL_EVM_BENCH_NOTE ?? '',
    loadAverageAtEnd: loadavg().map((x) => +x.toFixed(2)),
  }
}

module.exports = { anvilBinary, latencyProxy, median, runInfo, startAnvil }
