// A contended DEX block mined on a real anvil (issue 27): most transactions swap through the
// Uniswap V2 Router02 on a few hot pools, with multi-hop swaps, back-runs, WETH and transfers
// around them (ts/bench/dex-blocks.ts). Loaded back from the node with its pre-state, it must
// verify against anvil's header in every mode, parallel and auto must equal sequential, and the
// contention must show in the engine. (Not the state root: anvil hashes storage slots holding zero
// into its headers' roots, and the Uniswap setup leaves some; see anvil-state-root.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Address, Hash, Hex } from 'viem'
import { executeBlock, type ChainConfig, type ExecutionMode } from '../dist/index.js'
import { mineDexBlocks, type MineDexBlocksReturnType } from '../dist/bench/dex-blocks.js'
import { loadNodeBlock, type LoadNodeBlockReturnType } from '../dist/bench/node-block.js'
import { anvilBinary, startAnvil, type Anvil } from './support/anvil-state.js'

const haveAnvil = anvilBinary() !== undefined
if (!haveAnvil) console.warn('[parallel-evm tests] anvil (npm @foundry-rs/anvil) not installed: contended DEX suite skipped')

const chain: ChainConfig & { chainId: number } = { chainId: 31337, hardfork: 'cancun' }
const TXS = 90
const SWAP_TOPIC = '0xd78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822'

type RpcReceipt = { status: Hex; gasUsed: Hex; transactionHash: Hash; logs: { address: Address; topics: Hex[] }[] }

describe.skipIf(!haveAnvil)('contended DEX block mined on anvil', () => {
  let anvil: Anvil
  let mined: MineDexBlocksReturnType
  let loaded: LoadNodeBlockReturnType
  let receipts: RpcReceipt[]

  beforeAll(async () => {
    anvil = await startAnvil(['--hardfork', 'cancun', '--chain-id', '31337', '--accounts', String(TXS)])
    mined = await mineDexBlocks({
      rpcUrl: anvil.url,
      blocks: 1,
      txsPerBlock: TXS,
      users: TXS - 10,
      contention: 0.9,
      seed: 27,
    })
    const number = mined.blocks[0]!.number
    receipts = await anvil.rpc<RpcReceipt[]>('eth_getBlockReceipts', [`0x${number.toString(16)}`])
    loaded = await loadNodeBlock({ rpcUrl: anvil.url, blockNumber: number, chain })
  }, 120_000)

  afterAll(async () => {
    await anvil?.stop()
  })

  it('the block is contended: every transaction landed, most swap on the hot pools, most succeeded', () => {
    const b = mined.blocks[0]!
    expect(b.transactions).toBe(TXS)
    expect(receipts).toHaveLength(TXS)
    const hot = new Set(mined.pools.filter((p) => p.hot).map((p) => p.address))
    const onHot = receipts.filter((r) => r.logs.some((l) => l.topics[0] === SWAP_TOPIC && hot.has(l.address.toLowerCase() as Address)))
    expect(onHot.length).toBeGreaterThan(TXS / 2)
    expect(b.kinds.backrun).toBeGreaterThan(0)
    expect(b.kinds.multihop).toBeGreaterThan(0)
    const reverted = receipts.filter((r) => r.status !== '0x1').length
    expect(reverted).toBe(b.reverted)
    expect(reverted).toBeLessThan(TXS / 4)
  })

  it('sequential, auto and forced parallel on 2 threads verify against the header and give the same receipts and diff', async () => {
    const { block, state } = loaded
    const run = (mode: ExecutionMode) => executeBlock({ block, state, mode, threads: 2 })
    const seq = await run('sequential')
    expect(seq.verification).toEqual({ gasUsed: true, receiptsRoot: true, logsBloom: true, requestsHash: null })
    expect(seq.receipts.map((r) => ({ status: r.status, gasUsed: r.gasUsed }))).toEqual(receipts.map((r) => ({ status: r.status === '0x1' ? 'success' : 'reverted', gasUsed: BigInt(r.gasUsed) })))
    for (const mode of ['auto', 'parallel', 'parallel', 'parallel'] as const) {
      const r = await run(mode)
      expect(r.verification, mode).toEqual(seq.verification)
      expect(r.receipts, mode).toEqual(seq.receipts)
      expect(r.stateDiff, mode).toEqual(seq.stateDiff)
    }
  })

  it('the contention shows in the engine: forced parallel runs conflict, or auto mode ran the block sequentially', async () => {
    const { block, state } = loaded
    const auto = await executeBlock({ block, state, mode: 'auto', threads: 2 })
    let conflicts = 0
    for (let i = 0; i < 3; i++) {
      const { stats } = await executeBlock({ block, state, mode: 'parallel', threads: 2 })
      expect(stats.engine).toBe('blockStm')
      conflicts += stats.reexecutions + stats.validationAborts + stats.dependencyWaits
    }
    expect(conflicts > 0 || auto.stats.mode === 'sequential').toBe(true)
  })
})
