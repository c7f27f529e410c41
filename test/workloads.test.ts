// The bench's generated workloads are valid blocks: every transaction succeeds, parallel equals
// sequential, and the contracts did what the transactions asked (balances, pair reserves).
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeEventLog, hexToBigInt, type Abi, type Address, type Hex } from 'viem'
import { beforeAll, describe, expect, it } from 'vitest'
import { executeBlock, loadFixture, type ExecutionEngine, type ExecutionResult } from '../dist/index.js'
import { haveMainnet, mainnetDir } from './helpers.js'
import { benchToken, mappingSlot, HOT_ACCOUNTS } from '../dist/bench/erc20.js'
import { amountOut, uniswapBlocks } from '../dist/bench/uniswap.js'
import { buildWorkload } from '../dist/bench/workloads.js'
import type { GeneratedBlock } from '../dist/generate.js'

async function bothModes(g: GeneratedBlock, engine: ExecutionEngine): Promise<ExecutionResult> {
  const seq = await executeBlock({ block: g.block, state: g.prestate, chain: g.chain, mode: 'sequential', threads: 1 })
  const par = await executeBlock({ block: g.block, state: g.prestate, chain: g.chain, mode: 'parallel', threads: 2 })
  expect(par.stats.mode).toBe('parallel')
  expect(seq.stats.engine).toBe('sequential')
  // Which parallel engine took the block: token blocks pass the guessed-groups check.
  expect(par.stats.engine).toBe(engine)
  expect(par.receipts).toEqual(seq.receipts)
  expect(par.stateDiff).toEqual(seq.stateDiff)
  expect(seq.receipts.map((r) => r.status)).toEqual(g.block.transactions.map(() => 'success'))
  expect(seq.gasUsed).toBe(hexToBigInt(g.block.gasUsed as Hex))
  expect(seq.verification).toMatchObject({ gasUsed: true, logsBloom: true, receiptsRoot: true })
  return seq
}

const diffOf = (r: ExecutionResult, address: string) => Object.entries(r.stateDiff).find(([a]) => a.toLowerCase() === address.toLowerCase())?.[1]
const slotValue = (r: ExecutionResult, contract: Address, slot: Hex) => hexToBigInt(diffOf(r, contract)?.storage[slot] ?? '0x0')

describe('generated workloads', () => {
  it('erc20: each holder sent its amount to its own receiver', async () => {
    const g = await buildWorkload('erc20', 24, 7)
    expect(g.block.transactions).toHaveLength(24)
    const result = await bothModes(g, 'guessedGroups')
    const token = g.block.transactions[0]!.to as Address
    const balances = BigInt(benchToken().storageLayout.find((s) => s.label === '_balances')!.slot)
    // Each transfer logs Transfer(from, to, amount); the receiver's balance slot holds the amount.
    for (const [i, log] of result.logs.entries()) {
      const { eventName, args } = decodeEventLog({ abi: benchToken().abi, data: log.data, topics: log.topics as [Hex, ...Hex[]] }) as {
        eventName: string
        args: { from: Address; to: Address; value: bigint }
      }
      expect(eventName).toBe('Transfer')
      expect(args.value).toBe(1_000n + BigInt(i))
      expect(slotValue(result, token, mappingSlot(args.to, balances))).toBe(args.value)
      expect(slotValue(result, token, mappingSlot(args.from, balances))).toBe(10n ** 24n - args.value)
    }
  })

  it('erc20-hot: every holder sent to one receiver, whose balance is the sum (a lazily read slot)', async () => {
    const g = await buildWorkload('erc20-hot', 48, 7)
    const result = await bothModes(g, 'blockStm')
    const token = g.block.transactions[0]!.to as Address
    const balances = BigInt(benchToken().storageLayout.find((s) => s.label === '_balances')!.slot)
    const receivers = new Set<Address>()
    let sum = 0n
    for (const log of result.logs) {
      const { args } = decodeEventLog({ abi: benchToken().abi, data: log.data, topics: log.topics as [Hex, ...Hex[]] }) as { args: { to: Address; value: bigint } }
      receivers.add(args.to)
      sum += args.value
    }
    expect(receivers.size).toBe(1)
    expect(slotValue(result, token, mappingSlot([...receivers][0]!, balances))).toBe(sum)
  })

  it('mixed: hot accounts receive ETH and tokens, and send tokens in nonce order', async () => {
    const g = await buildWorkload('mixed', 40, 7)
    const result = await bothModes(g, 'guessedGroups')
    const hot = new Set(g.block.transactions.filter((_, i) => i % 4 === 0).map((t) => (t.to as string).toLowerCase()))
    expect(hot.size).toBeGreaterThan(1)
    expect(hot.size).toBeLessThanOrEqual(HOT_ACCOUNTS)
    for (const h of hot) expect(diffOf(result, h)!.balance).toBeGreaterThan(100n * 10n ** 18n - 10n ** 17n)
  })

  it('uniswap: every pair swapped once and its reserves moved by the swap', async () => {
    const { setup, bench, pairs } = await uniswapBlocks(6, 7)
    expect(new Set(pairs).size).toBe(6)
    expect(setup.block.transactions.length).toBeGreaterThan(6 * 5)
    const result = await bothModes(bench, 'guessedGroups')
    const pairAbi = createRequire(__filename)('@uniswap/v2-core/build/UniswapV2Pair.json').abi as Abi
    const R = 10n ** 24n
    const S = 10n ** 18n
    const syncs = result.logs.flatMap((log) => {
      try {
        const e = decodeEventLog({ abi: pairAbi, data: log.data, topics: log.topics as [Hex, ...Hex[]] }) as { eventName: string; args: { reserve0: bigint; reserve1: bigint } }
        return e.eventName === 'Sync' ? [{ pair: log.address.toLowerCase(), ...e.args }] : []
      } catch {
        return [] // the tokens' Transfer logs
      }
    })
    expect(syncs.map((s) => s.pair).sort()).toEqual(pairs.map((p) => p.toLowerCase()).sort())
    for (const s of syncs) {
      expect(s.reserve0).toBe(R + S)
      expect(s.reserve1).toBe(R - amountOut(S, R, R))
    }
  })

  it('transfer workloads keep their names and stay valid', async () => {
    for (const w of ['independent', 'hot-receiver', 'chain'] as const) {
      const g = await buildWorkload(w, 10, 7)
      expect(g.name).toBe(`${w} ×10`)
      await bothModes(g, 'transferGroups')
    }
  })
})

describe('workload cache', () => {
  it('stores a built block and returns it unchanged', async () => {
    const { cachedWorkload } = await import('../dist/bench/workloads.js')
    const dir = mkdtempSync(join(tmpdir(), 'parallel-evm-cache-'))
    const previous = process.env.PARALLEL_EVM_CACHE
    process.env.PARALLEL_EVM_CACHE = dir
    try {
      const first = await cachedWorkload('chain', 5, 9)
      expect(readdirSync(dir).filter((f) => f.startsWith('block-chain-5-9-'))).toHaveLength(1)
      expect(await cachedWorkload('chain', 5, 9)).toEqual(first)
      expect(first).toEqual(await buildWorkload('chain', 5, 9))
    } finally {
      if (previous === undefined) delete process.env.PARALLEL_EVM_CACHE
      else process.env.PARALLEL_EVM_CACHE = previous
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('optional dependencies', () => {
  it('a missing one is a typed error naming the package to install', async () => {
    const { requireOptional } = await import('../dist/bench/optional.js')
    const { MissingDependencyError } = await import('../dist/index.js')
    let error: unknown
    try {
      requireOptional('@parallel-evm/not-installed/build/X.json', 'The test')
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(MissingDependencyError)
    expect(error).toMatchObject({ code: 'MISSING_DEPENDENCY', packageName: '@parallel-evm/not-installed', details: expect.stringMatching(/npm install --save-dev @parallel-evm\/not-installed/) })
  })
})

describe('ethereumjs peer', () => {
  let EthereumjsPeer: typeof import('../dist/bench/ethereumjs.js').EthereumjsPeer
  beforeAll(async () => {
    EthereumjsPeer = (await import('../dist/bench/ethereumjs.js')).EthereumjsPeer
  })

  it.each(['erc20', 'uniswap', 'independent'] as const)('agrees on gas used for a small %s block, run after run', async (w) => {
    const g = await buildWorkload(w, 6, 3)
    const peer = await EthereumjsPeer.create({ block: g.block, prestate: g.prestate, chain: g.chain })
    const first = await peer.run()
    expect(first).toEqual({ gasUsed: hexToBigInt(g.block.gasUsed as Hex), failedTxs: 0 })
    // The state is restored after each run.
    expect(await peer.run()).toEqual(first)
  })

  it.skipIf(!haveMainnet).each(['930196', '19426587'])('agrees with the header on gas used for mainnet block %s', async (n) => {
    const f = await loadFixture(join(mainnetDir, n))
    const peer = await EthereumjsPeer.create({ block: f.block, prestate: f.prestate, chain: f.chain, blockHashes: f.blockHashes })
    expect((await peer.run()).gasUsed).toBe(hexToBigInt(f.block.gasUsed as Hex))
  })
})
