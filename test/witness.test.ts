// Prague and Osaka mainnet blocks from their execution witnesses (fixtures/mainnet-witness):
// executed on the witness alone in every mode, every header check passing and the post-state root
// computed from the witness equal to the header's; tampered transactions and witnesses caught;
// rpcState({ source: 'witness' }) against a local server that replays a fixture's recorded witness.
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { keccak256 } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { executeBlock, loadFixture, prepareFixture, replayBlocks, rpcState, stateRoot, StateError, verifyBlock, witnessState, type ExecutionWitness } from '../dist/index.js'
import { repoRoot, sharedDir } from './helpers.js'

const witnessDir = join(sharedDir, 'fixtures', 'mainnet-witness')
const haveWitness = existsSync(witnessDir)
if (!haveWitness) console.warn(`[parallel-evm tests] ${witnessDir} not found: witness suites are skipped`)
const blocks = haveWitness
  ? readdirSync(witnessDir)
      .filter((d) => existsSync(join(witnessDir, d, 'witness.json')))
      .sort()
  : []
const cli = (...args: string[]) => spawnSync('node', [join(repoRoot, 'dist', 'cli', 'main.js'), ...args], { encoding: 'utf8' })

describe.skipIf(!haveWitness)('mainnet blocks from execution witnesses', () => {
  it('finds the six blocks', () => {
    expect(blocks).toHaveLength(6)
  })

  describe.each(blocks)('block %s', (n) => {
    it.each([
      ['sequential', 1],
      ['parallel', 2],
      ['parallel', 4],
      ['auto', 2],
    ] as const)('%s on %i threads: every check passes, stateRoot from the witness', async (mode, threads) => {
      const { block, state } = await prepareFixture(join(witnessDir, n), { checkHeader: true })
      expect(state.witness).toBe(true)
      const result = await executeBlock({ block, state, mode, threads })
      expect(result.verification).toEqual({ gasUsed: true, receiptsRoot: true, logsBloom: true, requestsHash: true, stateRoot: true })
      const report = await verifyBlock({ block, result })
      const status = Object.fromEntries(report.checks.map((c) => [c.name, c.status]))
      expect(status).toMatchObject({
        gasUsed: 'passed',
        receiptsRoot: 'passed',
        logsBloom: 'passed',
        requestsHash: 'passed',
        stateRoot: 'passed',
        transactionsRoot: 'passed',
        withdrawalsRoot: 'passed',
        blockHash: 'passed',
        signatures: 'passed',
      })
      expect(report.passed).toBe(true)
    })
  })

  it('witnessState from the JSON object; stateRoot() of it is the parent state root', async () => {
    const fx = await loadFixture(join(witnessDir, '24628608'))
    const state = await witnessState(fx.witness!, { blockHashes: fx.blockHashes })
    const parentHeader = fx.witness!.headers![0]!
    expect(keccak256(parentHeader)).toBe(fx.block.parentHash)
    const result = await executeBlock({ block: fx.block, state, mode: 'parallel', threads: 2 })
    expect(result.verification.stateRoot).toBe(true)
    const root = await stateRoot(state)
    expect(root).toMatch(/^0x[0-9a-f]{64}$/)
    expect(root).not.toBe(fx.block.stateRoot)
  })

  it('a witness of another block is refused', async () => {
    const fx = await loadFixture(join(witnessDir, '24628608'))
    const other = await loadFixture(join(witnessDir, '24647140'))
    const state = await witnessState(other.witness!)
    await expect(executeBlock({ block: fx.block, state })).rejects.toThrow(/witness is of the state after block/)
  })

  it('a witness with a node changed or removed fails with a StateError naming the node', async () => {
    const fx = await loadFixture(join(witnessDir, '24628607'))
    const w = fx.witness!
    // The root node of the parent state (the parent header's stateRoot): changed, the witness no
    // longer holds that root.
    const parentRoot = await stateRoot(await witnessState(w))
    const at = w.state.findIndex((node) => keccak256(node) === parentRoot)
    expect(at).toBeGreaterThanOrEqual(0)
    const flipped = (hex: string) => `${hex.slice(0, -2)}${((parseInt(hex.slice(-2), 16) ^ 1) & 0xff).toString(16).padStart(2, '0')}` as `0x${string}`
    const changed: ExecutionWitness = { ...w, state: w.state.map((node, i) => (i === at ? flipped(node) : node)) }
    await expect(witnessState(changed)).rejects.toThrow(StateError)
    await expect(witnessState(changed)).rejects.toThrow(/does not hold the parent state root/)
    // Every node but the root's children removed: the block's first read fails, naming a node.
    const removed: ExecutionWitness = { ...w, state: w.state.filter((node, i) => i === at || node.length > 1200) }
    const err = await executeBlock({ block: fx.block, state: await witnessState(removed), mode: 'sequential' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StateError)
    expect((err as Error).message).toMatch(/trie node 0x[0-9a-f]{64} at path 0x[0-9a-f]* is not in the witness/)
  })

  it('parallel-evm verify fails a block whose first transaction has a zeroed r, naming transactionsRoot and signatures', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pevm-witness-'))
    try {
      const src = join(witnessDir, '24628607')
      for (const f of ['block.json', 'witness.json', 'block_hashes.json']) cpSync(join(src, f), join(dir, f))
      const block = JSON.parse(readFileSync(join(src, 'block.json'), 'utf8'))
      block.transactions[0].r = '0x0'
      writeFileSync(join(dir, 'block.json'), JSON.stringify(block))
      const r = cli('verify', dir, '--json', '--threads', '2')
      expect(r.status).toBe(1)
      const line = JSON.parse(r.stdout.trim().split('\n').at(-1)!)
      expect(line.passed).toBe(false)
      const failed = line.checks.filter((c: { status: string }) => c.status === 'failed').map((c: { name: string }) => c.name)
      expect(failed).toEqual(expect.arrayContaining(['transactionsRoot', 'signatures']))
      expect(line.checks.find((c: { name: string }) => c.name === 'signatures').txIndex).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('parallel-evm run and verify report stateRoot for a witness folder', () => {
    const dir = join(witnessDir, '24628608')
    const run = cli('run', dir, '--json', '--repeat', '1', '--min-time', '0', '--threads', '2')
    expect(run.status).toBe(0)
    expect(JSON.parse(run.stdout).verified).toMatchObject({ stateRoot: true, matchesSequential: true })
    const verify = cli('verify', dir, '--threads', '2')
    expect(verify.status).toBe(0)
    expect(verify.stdout).toMatch(/stateRoot\s+passed/)
    expect(verify.stdout).toMatch(/signatures\s+passed/)
  })
})

type RecordedCall = { id: number; method: string; params: unknown[] }

/**
 * A local JSON-RPC server answering from recorded data, as a node would: `result` gives a call's
 * result, or undefined for a method it does not serve. Every method asked is appended to `calls`.
 */
async function recordedNode(result: (call: RecordedCall) => unknown, calls: string[]): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      const answer = (call: RecordedCall) => {
        calls.push(call.method)
        const r = result(call)
        return r === undefined ? { jsonrpc: '2.0', id: call.id, error: { code: -32601, message: 'not served here' } } : { jsonrpc: '2.0', id: call.id, result: r }
      }
      // viem batches requests: a body is one call or an array of them.
      const parsed = JSON.parse(body) as RecordedCall | RecordedCall[]
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify(Array.isArray(parsed) ? parsed.map(answer) : answer(parsed)))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

// No node serving debug_executionWitness runs here (anvil has no such method): a local HTTP
// server answers it with the recorded witness of fixture 24628608, as reth would.
describe.skipIf(!haveWitness)("rpcState({ source: 'witness' }) against a server replaying a recorded witness", () => {
  let server: Server
  let url: string
  const calls: string[] = []
  beforeAll(async () => {
    const fx = await loadFixture(join(witnessDir, '24628608'))
    const witness = JSON.parse(readFileSync(join(witnessDir, '24628608', 'witness.json'), 'utf8'))
    ;({ server, url } = await recordedNode((call) => (call.method === 'debug_executionWitness' && BigInt(call.params[0] as string) === BigInt(fx.block.number) ? witness : undefined), calls))
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  it('fetches one witness per block and checks the post-state root', async () => {
    const fx = await loadFixture(join(witnessDir, '24628608'))
    const result = await executeBlock({ block: fx.block, state: rpcState({ rpcUrl: url, source: 'witness' }), mode: 'parallel', threads: 2 })
    expect(result.verification).toEqual({ gasUsed: true, receiptsRoot: true, logsBloom: true, requestsHash: true, stateRoot: true })
    expect(calls).toEqual(['debug_executionWitness'])
    expect(result.stateStats).toMatchObject({ kind: 'rpc-witness', rpcCalls: 1 })
  })
})

// Range replay with `state: 'witness'`: a local server serves the two consecutive fixture blocks
// (24628607 and its child 24628608) and their recorded witnesses, as a reth node would.
describe.skipIf(!haveWitness)("replayBlocks({ state: 'witness' }) against a server replaying recorded blocks and witnesses", () => {
  const pair = ['24628607', '24628608']
  let server: Server
  let url: string
  const calls: string[] = []
  beforeAll(async () => {
    const served = new Map(
      pair.map((n) => [BigInt(n), { block: JSON.parse(readFileSync(join(witnessDir, n, 'block.json'), 'utf8')), witness: JSON.parse(readFileSync(join(witnessDir, n, 'witness.json'), 'utf8')) }]),
    )
    ;({ server, url } = await recordedNode((call) => {
      const fx = served.get(BigInt(String(call.params[0])))
      if (fx && call.method === 'debug_executionWitness') return fx.witness
      if (fx && call.method === 'eth_getBlockByNumber' && call.params[1] === true) return fx.block
      return undefined
    }, calls))
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  it('replays both blocks on their witnesses: every header check and the post-state root pass, equal to executeBlock', async () => {
    calls.length = 0
    const out = []
    for await (const b of replayBlocks({ rpcUrl: url, from: 24628607n, to: 24628608n, state: 'witness', chainId: 1, threads: 2 })) out.push(b)
    expect(out.map((b) => b.number)).toEqual([24628607n, 24628608n])
    expect(out[1]!.parentHash).toBe(out[0]!.hash)
    expect(calls.filter((m) => m === 'debug_executionWitness')).toHaveLength(2)
    for (const b of out) {
      expect(b.verification).toEqual({ gasUsed: true, receiptsRoot: true, logsBloom: true, requestsHash: true, stateRoot: true })
      expect(b.stateStats).toMatchObject({ kind: 'rpc-witness' })
      // One block call and one witness call each; nothing carried.
      expect(b.replay).toMatchObject({ rpcCalls: 2, carriedKeys: 0, fetchedKeys: 0 })
      const fx = await prepareFixture(join(witnessDir, String(b.number)))
      const single = await executeBlock({ block: fx.block, state: fx.state, threads: 2 })
      expect(b.receipts).toEqual(single.receipts)
      expect(b.stateDiff).toEqual(single.stateDiff)
    }
  })

  it('the CLI replays the range with --state witness, every block verified', async () => {
    const run = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn('node', [join(repoRoot, 'dist', 'cli', 'main.js'), 'replay', '--rpc', url, '24628607..24628608', '--state', 'witness', '--chain-id', '1', '--threads', '2', '--json'])
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d) => (stdout += String(d)))
      child.stderr.on('data', (d) => (stderr += String(d)))
      child.on('close', (status) => resolve({ status, stdout, stderr }))
    })
    expect(run.stderr).toBe('')
    expect(run.status).toBe(0)
    const lines = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines.pop().summary).toMatchObject({ blocks: 2, verified: 2, failed: 0 })
    for (const l of lines) expect(l.verified).toMatchObject({ stateRoot: true, receiptsRoot: true })
  })
})
