// Range replay against a real anvil: a chain of 200+ mixed blocks (transfers, ERC-20 and Uniswap
// V2 calls, creations, reverts, BLOCKHASH reads) replayed through each state source, with and
// without the carried state; every receipt against eth_getBlockReceipts, every header check, every
// block against executeBlock. Backpressure, abort, reorgs and carried-state mismatches are typed;
// a CLI replay killed with SIGKILL mid-range and resumed holds every block exactly once.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Address, Hash, Hex } from 'viem'
import { executeBlock, ReorgError, replayBlocks, ReplayError, rpcState, StateMismatchError, type ChainConfig, type ReplayBlocksParameters, type ReplayedBlock, type RpcBlock } from '../dist/index.js'
import { mineChain, type MinedChain } from '../dist/bench/anvil-chain.js'
import { startAnvil, type Anvil } from './support/anvil.js'
import { startFaultyProxy, type FaultyProxy } from './support/faulty-proxy.js'
import { repoRoot } from './helpers.js'

const chain: ChainConfig = { chainId: 31337, hardfork: 'cancun' }
const SWAP_TOPIC = '0xd78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822'
// Block 1's parent is anvil's genesis, whose header carries the empty state root whatever its
// accounts: proofs at block 0 cannot be checked (see the README), so ranges start at 2.
const FROM = 2n

type RpcReceipt = { status: Hex; gasUsed: Hex; cumulativeGasUsed: Hex; contractAddress: Address | null; logs: { address: Address; topics: Hex[]; data: Hex }[] }

let anvil: Anvil
let proxy: FaultyProxy
let mined: MinedChain
let TO: bigint
let dir: string
const receipts = new Map<bigint, RpcReceipt[]>()
const hashes = new Map<bigint, Hash>()
let byPrestate: ReplayedBlock[] = []

async function collect(params: Omit<ReplayBlocksParameters, 'rpcUrl' | 'client' | 'rpc' | 'chain' | 'chainId'> & { rpcUrl?: string }): Promise<ReplayedBlock[]> {
  const out: ReplayedBlock[] = []
  for await (const b of replayBlocks({ rpcUrl: anvil.url, chain, chainId: 31337, threads: 2, ...params } as ReplayBlocksParameters)) out.push(b)
  return out
}

function expectMatchesAnvil(b: ReplayedBlock) {
  const want = receipts.get(b.number)!
  expect(b.hash).toBe(hashes.get(b.number))
  expect(b.receipts.length).toBe(want.length)
  b.receipts.forEach((r, i) => {
    const w = want[i]!
    expect({ n: b.number, i, status: r.status, gasUsed: r.gasUsed, cumulative: r.cumulativeGasUsed, contract: r.contractAddress?.toLowerCase() ?? null }).toEqual({
      n: b.number,
      i,
      status: w.status === '0x1' ? 'success' : 'reverted',
      gasUsed: BigInt(w.gasUsed),
      cumulative: BigInt(w.cumulativeGasUsed),
      contract: w.contractAddress?.toLowerCase() ?? null,
    })
    expect(r.logs.map((l) => ({ address: l.address.toLowerCase(), topics: l.topics, data: l.data }))).toEqual(w.logs.map((l) => ({ address: l.address.toLowerCase(), topics: l.topics, data: l.data })))
  })
  expect(b.verification).toEqual({ gasUsed: true, receiptsRoot: true, logsBloom: true, requestsHash: null })
}

// The prestateTracer lists an account a block creates (or first pays) as an existing empty one,
// proofs as absent: the two sources differ in the diff's `created` flag of such accounts only
// (as `executeBlock` with `rpcState` does), so comparisons across sources leave it out.
const withoutCreated = (diff: ReplayedBlock['stateDiff']) => Object.fromEntries(Object.entries(diff).map(([a, d]) => [a, { ...d, created: undefined }]))

function expectSameResults(a: ReplayedBlock[], b: ReplayedBlock[], acrossSources = false) {
  expect(a.map((x) => x.number)).toEqual(b.map((x) => x.number))
  a.forEach((x, i) => {
    expect(x.receipts).toEqual(b[i]!.receipts)
    if (acrossSources) expect(withoutCreated(x.stateDiff)).toEqual(withoutCreated(b[i]!.stateDiff))
    else expect(x.stateDiff).toEqual(b[i]!.stateDiff)
  })
}

const totalCalls = (blocks: ReplayedBlock[]) => blocks.reduce((n, b) => n + b.replay.rpcCalls, 0)

beforeAll(async () => {
  anvil = await startAnvil({ hardfork: 'cancun', chainId: 31337, accounts: 20 })
  proxy = await startFaultyProxy(anvil.url)
  dir = mkdtempSync(join(tmpdir(), 'parallel-evm-replay-'))
  mined = await mineChain({ rpcUrl: anvil.url, blocks: 200, txsPerBlock: 8, seed: 25 })
  TO = mined.last
  const numbers = Array.from({ length: Number(TO - FROM + 1n) }, (_, i) => FROM + BigInt(i))
  for (let i = 0; i < numbers.length; i += 25) {
    await Promise.all(
      numbers.slice(i, i + 25).map(async (n) => {
        const hex = `0x${n.toString(16)}`
        receipts.set(n, await anvil.rpc<RpcReceipt[]>('eth_getBlockReceipts', [hex]))
        hashes.set(n, (await anvil.rpc<{ hash: Hash }>('eth_getBlockByNumber', [hex, false])).hash)
      }),
    )
  }
}, 180_000)

afterAll(async () => {
  await proxy?.stop()
  await anvil?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('replayBlocks on a mined anvil chain', () => {
  it('mined 200+ blocks of mixed work', () => {
    expect(TO - mined.first + 1n).toBeGreaterThanOrEqual(200n)
    const all = [...receipts.values()].flat()
    expect(all.length).toBeGreaterThanOrEqual(1600)
    expect(all.filter((r) => r.status === '0x0').length).toBeGreaterThan(20)
    expect(all.filter((r) => r.contractAddress).length).toBeGreaterThan(15)
    expect(all.filter((r) => r.logs.some((l) => l.topics[0] === SWAP_TOPIC)).length).toBeGreaterThan(50)
  })

  it("prestate source: every block in order, every receipt equals anvil's, every header check passes, equal to executeBlock", async () => {
    byPrestate = await collect({ from: FROM, to: TO, state: 'prestate' })
    expect(byPrestate.map((b) => b.number)).toEqual([...receipts.keys()].sort((a, b) => (a < b ? -1 : 1)))
    for (const b of byPrestate) expectMatchesAnvil(b)
    expect(byPrestate.slice(10).some((b) => b.replay.carriedKeys > 0)).toBe(true)
    // executeBlock, block by block, on the node's pre-state (no carried state).
    for (let i = 0; i < byPrestate.length; i += 8) {
      await Promise.all(
        byPrestate.slice(i, i + 8).map(async (b) => {
          const single = await executeBlock({ block: b.block, state: rpcState({ rpcUrl: anvil.url, source: 'prestate', chainId: 31337 }), chain, threads: 2 })
          expect(single.receipts).toEqual(b.receipts)
          expect(single.stateDiff).toEqual(b.stateDiff)
          expect(single.gasUsed).toBe(b.gasUsed)
        }),
      )
    }
  }, 120_000)

  it('proofs source: the same results, and the carried state spares most RPC calls', async () => {
    const carried = await collect({ from: FROM, to: TO, state: 'proofs' })
    for (const b of carried) expectMatchesAnvil(b)
    expectSameResults(carried, byPrestate, true)
    const fresh = await collect({ from: FROM, to: TO, state: 'proofs', prefetch: 0, carryState: false })
    expectSameResults(fresh, carried)
    expect(fresh.every((b) => b.replay.carriedKeys === 0)).toBe(true)
    expect(totalCalls(carried) * 2).toBeLessThan(totalCalls(fresh))
    // Later blocks read mostly what earlier ones carried.
    const late = carried.slice(-50)
    expect(late.reduce((n, b) => n + b.replay.carriedKeys, 0)).toBeGreaterThan(late.reduce((n, b) => n + b.replay.fetchedKeys, 0))
  }, 120_000)

  it('a carried state over its byte budget evicts the least recently used keys and still gives the same results', async () => {
    const small = await collect({ from: FROM, to: FROM + 60n, state: 'proofs', carryBudgetBytes: 40_000 })
    expectSameResults(small, byPrestate.slice(0, 61), true)
    const last = small.at(-1)!.replay.carried
    expect(last.evictedAccounts + last.evictedSlots).toBeGreaterThan(0)
    expect(Math.max(...small.map((b) => b.replay.carried.bytes))).toBeLessThanOrEqual(40_000)
  }, 60_000)

  it('prefetches at most `prefetch` blocks ahead of a consumer that stops pulling, and aborts cleanly', async () => {
    proxy.reset()
    let fullBlocks = 0
    proxy.rewrite = (c) => {
      if (c.method === 'eth_getBlockByNumber' && c.params[1] === true) fullBlocks++
    }
    const controller = new AbortController()
    const it = replayBlocks({ rpcUrl: proxy.url, from: FROM, to: TO, state: 'proofs', chain, chainId: 31337, prefetch: 3, signal: controller.signal })[Symbol.asyncIterator]()
    const first = await it.next()
    expect(first.value?.number).toBe(FROM)
    await new Promise((r) => setTimeout(r, 300))
    expect(fullBlocks).toBe(4) // the block yielded and the 3 fetched ahead, no more while nobody pulls
    const second = await it.next()
    expect(second.value?.number).toBe(FROM + 1n)
    controller.abort()
    await expect(it.next()).rejects.toMatchObject({ name: 'AbortError' })
    proxy.reset()
  })

  it('sends each block to the node in its own HTTP request, also when blocks run back to back', async () => {
    proxy.reset()
    let mostBlocks = 0
    proxy.onRequest = (calls) => {
      const blocks = calls.filter((c) => c.method === 'eth_getBlockByNumber' && c.params[1] === true).length
      mostBlocks = Math.max(mostBlocks, blocks)
    }
    const blocks = await collect({ rpcUrl: proxy.url, from: FROM, to: FROM + 40n, state: 'prestate', prefetch: 8 })
    expect(blocks.map((b) => b.number)).toEqual(Array.from({ length: 41 }, (_, i) => FROM + BigInt(i)))
    // Several blocks in one JSON-RPC batch come back only when the node has answered them all.
    expect(mostBlocks).toBe(1)
    proxy.reset()
  })

  it('a block that does not follow the block before is a ReorgError with both hashes', async () => {
    const wrong = `0x${'11'.repeat(32)}` as Hash
    const e = await collect({ from: FROM + 5n, to: FROM + 6n, state: 'proofs', parentHash: wrong }).catch((err: unknown) => err)
    expect(e).toBeInstanceOf(ReorgError)
    expect(e).toMatchObject({ code: 'REORG', blockNumber: FROM + 5n, expectedParentHash: wrong, parentHash: hashes.get(FROM + 4n) })
  })

  it('a traced value that differs from the carried one is a StateMismatchError naming the key', async () => {
    proxy.reset()
    const target = FROM + 20n
    const seen = new Set<string>()
    let corrupted: { address: string; balance: bigint } | undefined
    proxy.rewriteResult = (c, result) => {
      if (c.method !== 'debug_traceBlockByNumber' || !Array.isArray(result)) return result
      const traces = result as { result: Record<string, { balance?: Hex }> }[]
      if (BigInt(c.params[0] as string) < target) {
        for (const t of traces) for (const a of Object.keys(t.result)) seen.add(a.toLowerCase())
        return result
      }
      if (BigInt(c.params[0] as string) !== target || corrupted) return result
      for (const t of traces) {
        for (const [a, acc] of Object.entries(t.result)) {
          if (seen.has(a.toLowerCase()) && acc.balance !== undefined) {
            corrupted = { address: a.toLowerCase(), balance: BigInt(acc.balance) }
            acc.balance = `0x${(BigInt(acc.balance) + 1n).toString(16)}`
            return result
          }
        }
      }
      return result
    }
    const e = await collect({ rpcUrl: proxy.url, from: FROM, to: target, state: 'prestate', prefetch: 0 }).catch((err: unknown) => err)
    proxy.reset()
    expect(corrupted).toBeDefined()
    expect(e).toBeInstanceOf(StateMismatchError)
    expect(e).toMatchObject({
      code: 'STATE_MISMATCH',
      blockNumber: target,
      address: corrupted!.address,
      field: 'balance',
      carried: corrupted!.balance.toString(),
      fetched: (corrupted!.balance + 1n).toString(),
    })
  })

  it('a block that fails stops the range with a ReplayError carrying its number and typed cause', async () => {
    const e = await collect({ from: FROM, to: FROM + 3n, state: 'proofs', maxRounds: 1, carryState: false }).catch((err: unknown) => err)
    expect(e).toBeInstanceOf(ReplayError)
    expect(e).toMatchObject({ code: 'REPLAY_FAILED', blockNumber: FROM, causeCode: 'STATE_ERROR' })
    await expect(collect({ from: 5n, to: 4n })).rejects.toMatchObject({ code: 'INVALID_INPUT' })
    expect(() => replayBlocks({ rpcUrl: anvil.url, from: 2n, to: 3n, state: 'nope' as 'proofs' })).toThrow(/state must be/)
    expect(() => replayBlocks({ rpcUrl: anvil.url, from: 2n, to: 3n, onReorg: 'ignore' as 'error' })).toThrow(/onReorg/)
    expect(() => replayBlocks({ rpcUrl: anvil.url, from: 2n, to: 3n, batchSize: 0 })).toThrow(/batchSize/)
    expect(() => replayBlocks({ rpcUrl: anvil.url, from: 2n, to: 3n, trace: { tracer: 'jsTracer' } as unknown as 'callTracer' })).toThrow(/tracer/)
  })

  it('one engine call per block (batchSize 1) gives the same results as blocks run back to back', async () => {
    const single = await collect({ from: FROM, to: TO, state: 'prestate', batchSize: 1 })
    expectSameResults(single, byPrestate)
    single.forEach((b, i) => {
      expect(b.verification).toEqual(byPrestate[i]!.verification)
      expect(b.replay.carried).toEqual(byPrestate[i]!.replay.carried)
      expect(b.replay.carriedKeys).toBe(byPrestate[i]!.replay.carriedKeys)
      // The keys fetched ahead for blocks a run did not reach are merged at their own turn.
      expect({ n: b.number, rounds: b.replay.rounds, fetched: b.replay.fetchedKeys, calls: b.replay.rpcCalls }).toEqual({
        n: b.number,
        rounds: byPrestate[i]!.replay.rounds,
        fetched: byPrestate[i]!.replay.fetchedKeys,
        calls: byPrestate[i]!.replay.rpcCalls,
      })
    })
    // Back to back, most blocks did not wait: their inputs were in hand when the run started.
    expect(byPrestate.filter((b) => b.timings.waitMs === 0).length).toBeGreaterThan(byPrestate.length / 4)
  }, 120_000)

  it('an engine error in a block run back to back with others: the blocks before it are yielded, then the same typed error as one call per block', async () => {
    // The first block from FROM + 5 with two transactions or more (early blocks deploy contracts alone).
    let bad = FROM + 5n
    while (receipts.get(bad)!.length < 2) bad++
    proxy.reset()
    proxy.rewriteResult = (c, result) => {
      if (c.method !== 'eth_getBlockByNumber' || c.params[1] !== true || BigInt(c.params[0] as string) !== bad) return result
      const block = result as { transactions: { nonce: Hex }[] }
      // A nonce far ahead of the sender's: the engine refuses the transaction.
      return { ...block, transactions: block.transactions.map((t, i) => (i === 1 ? { ...t, nonce: '0x10000' } : t)) }
    }
    const run = async (batchSize?: number) => {
      const got: bigint[] = []
      try {
        for await (const b of replayBlocks({ rpcUrl: proxy.url, from: FROM, to: bad + 8n, state: 'prestate', chain, chainId: 31337, threads: 2, batchSize })) got.push(b.number)
      } catch (e) {
        return { got, e: e as ReplayError }
      }
      return { got, e: undefined }
    }
    const batched = await run()
    const single = await run(1)
    proxy.reset()
    expect(batched.got).toEqual(Array.from({ length: Number(bad - FROM) }, (_, i) => FROM + BigInt(i)))
    expect(batched.e).toBeInstanceOf(ReplayError)
    expect(batched.e).toMatchObject({ blockNumber: bad, causeCode: 'INVALID_TRANSACTION', cause: { txIndex: 1 } })
    expect(single.got).toEqual(batched.got)
    expect({ message: batched.e!.message, cause: batched.e!.cause.message, name: batched.e!.cause.name }).toEqual({
      message: single.e!.message,
      cause: single.e!.cause.message,
      name: single.e!.cause.name,
    })
  }, 60_000)

  it('trace: every block traced on the carried state, the same traces as executeBlock', async () => {
    const trace = { tracer: 'callTracer', tracerConfig: { withLog: true } } as const
    for (const state of ['prestate', 'proofs'] as const) {
      const traced = await collect({ from: FROM, to: FROM + 40n, state, trace })
      expectSameResults(traced, byPrestate.slice(0, 41), state === 'proofs')
      for (let i = 0; i < traced.length; i += 8) {
        await Promise.all(
          traced.slice(i, i + 8).map(async (b) => {
            expect(b.traces!.map((t) => t.txHash)).toEqual(b.block.transactions.map((t) => (typeof t === 'string' ? t : t.hash)))
            const single = await executeBlock({ block: b.block, state: rpcState({ rpcUrl: anvil.url, source: 'prestate', chainId: 31337 }), chain, threads: 2, trace })
            expect(b.traces).toEqual(single.traces)
          }),
        )
      }
    }
    // Blocks traced one call at a time: the same.
    const single = await collect({ from: FROM, to: FROM + 10n, state: 'proofs', trace: 'prestateTracer', batchSize: 1 })
    const batched = await collect({ from: FROM, to: FROM + 10n, state: 'proofs', trace: 'prestateTracer' })
    expect(batched.map((b) => b.traces)).toEqual(single.map((b) => b.traces))
  }, 120_000)
})

// A chain reorganised under a running replay (anvil_reorg replaces the last blocks): a second
// anvil, so that the chain the other tests replay stays as mined.
describe('replayBlocks under a reorg', () => {
  let node: Anvil
  let last: bigint
  let genesis: string
  const hashOf = async (n: bigint) => (await node.rpc<{ hash: Hash }>('eth_getBlockByNumber', [`0x${n.toString(16)}`, false])).hash

  beforeAll(async () => {
    node = await startAnvil({ hardfork: 'cancun', chainId: 31337, accounts: 4 })
    genesis = await node.rpc<string>('evm_snapshot', [])
  }, 60_000)
  afterAll(async () => {
    await node?.stop()
  })

  /** A fresh chain of 30 blocks of transfers (back to the genesis snapshot first). */
  async function chainOf30(): Promise<void> {
    await node.rpc('evm_revert', [genesis])
    genesis = await node.rpc<string>('evm_snapshot', [])
    for (let i = 0; i < 30; i++) {
      for (const [j, from] of node.accounts.entries()) await node.send({ from, to: node.accounts[(j + 1) % node.accounts.length]!, value: BigInt(1000 + i), gas: 21_000n })
      last = await node.mine()
    }
  }

  /** Replays 2..last with the consumer pausing after `pauseAt`, where `reorg` runs. */
  async function replayThrough(params: Partial<ReplayBlocksParameters>, pauseAt: bigint, reorg: () => Promise<void>): Promise<{ got: ReplayedBlock[]; error: unknown }> {
    const got: ReplayedBlock[] = []
    try {
      for await (const b of replayBlocks({ rpcUrl: node.url, from: 2n, to: last, chain, chainId: 31337, threads: 2, prefetch: 8, state: 'proofs', ...params } as ReplayBlocksParameters)) {
        got.push(b)
        if (b.number === pauseAt) {
          // The blocks fetched ahead are all in by now; the reorg replaces some of them.
          await new Promise((r) => setTimeout(r, 300))
          await reorg()
        }
      }
      return { got, error: undefined }
    } catch (e) {
      return { got, error: e }
    }
  }

  // Replaces blocks `fork`..last with blocks of other transfers (different hashes).
  const reorgFrom = (fork: bigint) => async () => {
    const depth = Number(last - fork + 1n)
    const txs = Array.from({ length: depth }, (_, i) => [{ from: node.accounts[0], to: node.accounts[2], value: `0x${(7 + i).toString(16)}`, gas: '0x5208' }, i])
    await node.rpc('anvil_reorg', [depth, txs])
  }

  it("onReorg 'refetch': a reorg above the last yielded block is followed; every block is the new chain's, verified", async () => {
    await chainOf30()
    const old = await hashOf(8n)
    // At most 4 blocks per engine call: when the consumer pauses at 3, nothing past 6 has run,
    // and the blocks fetched ahead up to 11 (8 and up, stale once the reorg is done) wait.
    const { got, error } = await replayThrough({ onReorg: 'refetch', batchSize: 4 }, 3n, reorgFrom(8n))
    expect(error).toBeUndefined()
    expect(got.map((b) => b.number)).toEqual(Array.from({ length: Number(last - 1n) }, (_, i) => 2n + BigInt(i)))
    expect(await hashOf(8n)).not.toBe(old)
    for (const b of got) {
      expect(b.hash).toBe(await hashOf(b.number))
      expect(b.verification).toEqual({ gasUsed: true, receiptsRoot: true, logsBloom: true, requestsHash: null })
    }
  }, 60_000)

  it("onReorg 'refetch': a reorg that replaced a yielded block is a ReorgError naming both hashes", async () => {
    await chainOf30()
    const yielded = await hashOf(3n)
    const { got, error } = await replayThrough({ onReorg: 'refetch', batchSize: 4 }, 3n, reorgFrom(3n))
    expect(got[1]!.hash).toBe(yielded)
    // Blocks run with 3 in one engine call (confirmed before the reorg) are yielded; the next one is the error.
    const at = (error as ReorgError).blockNumber
    expect(error).toBeInstanceOf(ReorgError)
    expect(at).toBeLessThanOrEqual(7n)
    expect(got.at(-1)!.number).toBe(at - 1n)
    expect(error).toMatchObject({ code: 'REORG', expectedParentHash: got.at(-1)!.hash, parentHash: await hashOf(at - 1n) })
  }, 60_000)

  it("onReorg 'error' (default): blocks fetched before the reorg run; the first block after it is a ReorgError", async () => {
    await chainOf30()
    const { got, error } = await replayThrough({}, 3n, reorgFrom(8n))
    expect(error).toBeInstanceOf(ReorgError)
    const at = (error as ReorgError).blockNumber
    expect(at).toBeGreaterThan(8n)
    expect(got.at(-1)!.number).toBe(at - 1n)
    expect(error).toMatchObject({ expectedParentHash: got.at(-1)!.hash, parentHash: await hashOf(at - 1n) })
  }, 60_000)
})

type Run = { status: number | null; stdout: string; stderr: string }

// Async spawn: the proxy answering the CLI lives in this process's event loop.
function cli(args: string[], killAfterLines?: number): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn('node', [join(repoRoot, 'dist', 'cli', 'main.js'), ...args])
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => {
      stdout += String(d)
      if (killAfterLines !== undefined && stdout.split('\n').length > killAfterLines) child.kill('SIGKILL')
    })
    child.stderr.on('data', (d) => (stderr += String(d)))
    child.on('close', (status) => resolve({ status, stdout, stderr }))
  })
}

describe('cli replay', () => {
  const base = () => ['replay', '--rpc', anvil.url, `${FROM}..${TO}`, '--state', 'proofs', '--hardfork', 'cancun', '--chain-id', '31337', '--threads', '2', '--prefetch', '4']

  it('killed with SIGKILL mid-range and resumed: the outputs hold every block exactly once', async () => {
    const out = join(dir, 'blocks.jsonl')
    const db = join(dir, 'blocks.db')
    const killed = await cli([...base(), '--out', out, '--sqlite', db, '--json'], 60)
    expect(killed.status).toBe(null) // killed, not exited
    const before = readFileSync(out, 'utf8').split('\n').filter(Boolean).length
    expect(before).toBeGreaterThan(30)
    expect(before).toBeLessThan(Number(TO - FROM))

    const refused = await cli([...base(), '--out', out, '--json'])
    expect(refused.status).toBe(2)
    expect(refused.stderr).toMatch(/already holds replayed blocks/)

    const resumed = await cli([...base(), '--out', out, '--sqlite', db, '--json', '--resume'])
    expect(resumed.stderr).toBe('')
    expect(resumed.status).toBe(0)
    const lines = resumed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    const summary = lines.pop().summary
    expect(summary).toMatchObject({ failed: 0 })
    expect(summary.blocks).toBe(lines.length)
    expect(lines[0].number).toBeLessThanOrEqual(before + Number(FROM))
    for (const l of lines) expect(l.verified).toEqual({ gasUsed: true, receiptsRoot: true, logsBloom: true, requestsHash: null })

    const written = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { number: number; hash: Hash; receipts: unknown[]; stateDiff: object })
    const expected = [...hashes.keys()].sort((a, b) => (a < b ? -1 : 1))
    expect(written.map((w) => BigInt(w.number))).toEqual(expected)
    for (const w of written) {
      expect(w.hash).toBe(hashes.get(BigInt(w.number)))
      expect(w.receipts.length).toBe(receipts.get(BigInt(w.number))!.length)
    }

    const Database = require('better-sqlite3') as typeof import('better-sqlite3')
    const sql = new Database(db, { readonly: true })
    try {
      const blocks = sql.prepare('SELECT COUNT(*) AS n, COUNT(DISTINCT number) AS d, MIN(number) AS lo, MAX(number) AS hi, SUM(verified) AS v FROM blocks').get() as Record<string, number>
      expect(blocks).toEqual({ n: expected.length, d: expected.length, lo: Number(FROM), hi: Number(TO), v: expected.length })
      const all = [...receipts.values()].flat()
      expect((sql.prepare('SELECT COUNT(*) AS n FROM transactions').get() as { n: number }).n).toBe(all.length)
      expect((sql.prepare('SELECT COUNT(*) AS n FROM logs').get() as { n: number }).n).toBe(all.reduce((n, r) => n + r.logs.length, 0))
      const swaps = sql.prepare('SELECT COUNT(*) AS n FROM logs WHERE address = ? AND topic0 = ?').get(mined.pair, SWAP_TOPIC) as { n: number }
      expect(swaps.n).toBe(all.flatMap((r) => r.logs).filter((l) => l.topics[0] === SWAP_TOPIC).length)
      expect((sql.prepare('SELECT COUNT(*) AS n FROM storage_changes WHERE address = ?').get(mined.tokens[0]) as { n: number }).n).toBeGreaterThan(100)
      const history = sql.prepare('SELECT block_number FROM account_changes WHERE address = ? ORDER BY block_number').all(mined.pair) as { block_number: number }[]
      expect(history.length).toBeGreaterThan(20)
    } finally {
      sql.close()
    }
  }, 120_000)

  it('--tracer: every --out line holds the traces executeBlock gives for its block', async () => {
    const out = join(dir, 'traced.jsonl')
    const r = await cli([
      'replay',
      '--rpc',
      anvil.url,
      `${FROM + 10n}..${FROM + 14n}`,
      '--hardfork',
      'cancun',
      '--chain-id',
      '31337',
      '--threads',
      '2',
      '--tracer',
      'callTracer',
      '--out',
      out,
      '--json',
    ])
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { number: number; traces: unknown[] })
    expect(lines.map((l) => BigInt(l.number))).toEqual([10n, 11n, 12n, 13n, 14n].map((k) => FROM + k))
    for (const l of lines) {
      const block = await anvil.rpc<RpcBlock>('eth_getBlockByNumber', [`0x${l.number.toString(16)}`, true])
      const single = await executeBlock({ block, state: rpcState({ rpcUrl: anvil.url, source: 'prestate', chainId: 31337 }), chain, threads: 2, trace: 'callTracer' })
      expect(l.traces).toEqual(JSON.parse(JSON.stringify(single.traces)))
    }
  }, 60_000)

  it('rejects bad arguments with exit code 2 and a message', async () => {
    const runs = await Promise.all([
      cli(['replay', '--rpc', anvil.url, 'latest', '--hardfork', 'cancun']),
      cli(['replay', '--rpc', anvil.url, '2..5', '--hardfork', 'cancun', '--resume']),
      cli(['replay', '--rpc', anvil.url, '2..5']),
      cli(['replay', '--rpc', anvil.url, '2..5', '--hardfork', 'cancun', '--on-reorg', 'ignore']),
      cli(['replay', '--rpc', anvil.url, '5..2', '--hardfork', 'cancun']),
    ])
    // Commander's own check of a choice exits 1.
    expect(runs.map((r) => r.status)).toEqual([2, 2, 2, 1, 2])
    expect(runs.map((r) => r.stderr)).toEqual([
      expect.stringMatching(/not 'latest'/),
      expect.stringMatching(/--resume needs --out, --sqlite or --postgres/),
      expect.stringMatching(/--hardfork/),
      expect.stringMatching(/--on-reorg/),
      expect.stringMatching(/empty range/),
    ])
  })

  it('prints a summary line and exits 1 when a block fails a header check', async () => {
    proxy.reset()
    const bad = FROM + 3n
    proxy.rewriteResult = (c, result) => {
      if (c.method === 'eth_getBlockByNumber' && c.params[1] === true && BigInt(c.params[0] as string) === bad) {
        return { ...(result as object), gasUsed: '0x1' }
      }
      return result
    }
    const r = await cli(['replay', '--rpc', proxy.url, `${FROM}..${FROM + 5n}`, '--state', 'proofs', '--hardfork', 'cancun', '--chain-id', '31337', '--json'])
    proxy.reset()
    expect(r.status).toBe(1)
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines.at(-1).summary).toMatchObject({ blocks: 6, verified: 5, failed: 1 })
    expect(lines.find((l) => l.number === Number(bad)).verified.gasUsed).toBe(false)
    for (const l of lines.slice(0, -1)) expect(Object.keys(l)).toEqual(['number', 'hash', 'txs', 'gasUsed', 'verified', 'state', 'fetchMs', 'waitMs', 'executeMs'])
  })
})
