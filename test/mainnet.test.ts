// Every mainnet fixture block, in every mode, against its header.
import { join } from 'node:path'
import { formatBlock, type RpcBlock as ViemRpcBlock } from 'viem'
import { describe, expect, it } from 'vitest'
import { executeBlock, loadFixture, prepareFixture } from '../dist/index.js'
import { haveMainnet, mainnetBlocks, mainnetDir } from './helpers.js'

describe.skipIf(!haveMainnet)('mainnet fixtures', () => {
  const blocks = mainnetBlocks()

  it('finds the fixtures', () => {
    expect(blocks.length).toBeGreaterThan(60)
  })

  describe.each(blocks)('block %s', (n) => {
    it.each(['auto', 'sequential', 'parallel'] as const)('%s mode matches the header', async (mode) => {
      const { block, state } = await prepareFixture(join(mainnetDir, n))
      const result = await executeBlock({ block, state, mode, threads: 2 })
      expect(result.number).toBe(BigInt(n))
      expect(result.verification.gasUsed).toBe(true)
      expect(result.verification.logsBloom).toBe(true)
      // Null before Byzantium (receipts carried intermediate state roots).
      expect(result.verification.receiptsRoot).toBe(Number(n) >= 4_370_000 ? true : null)
      if (mode === 'sequential') expect(result.stats.mode).toBe('sequential')
      // Parallel mode may fall back to sequential, or skip the workers for an empty block (the
      // engine says why); it never fails silently.
      if (mode === 'parallel' && result.stats.mode === 'sequential') expect(result.stats.reason).toMatch(/fell back|no transactions/)
      expect(result.receipts).toHaveLength(block.txCount)
    })
  })

  it('accepts plain objects and a viem Block, with the same outcome', async () => {
    const n = '12459406'
    const fx = await loadFixture(join(mainnetDir, n))
    const fromRpc = await executeBlock({ block: fx.block, state: fx.prestate, blockHashes: fx.blockHashes, mode: 'parallel', threads: 2 })
    const viemBlock = formatBlock(fx.block as unknown as ViemRpcBlock)
    const fromViem = await executeBlock({ block: viemBlock as never, state: fx.prestate, blockHashes: fx.blockHashes, mode: 'sequential' })
    expect(fromViem.verification).toEqual({ gasUsed: true, receiptsRoot: true, logsBloom: true, requestsHash: null })
    expect(fromViem.gasUsed).toBe(BigInt(fx.block.gasUsed as string))
    expect(fromViem.receipts).toEqual(fromRpc.receipts)
    expect(fromViem.stateDiff).toEqual(fromRpc.stateDiff)
    const r = fromRpc.receipts[0]!
    expect(typeof r.gasUsed).toBe('bigint')
    expect(['success', 'reverted']).toContain(r.status)
    expect(fromRpc.logs.map((l) => l.logIndex)).toEqual(fromRpc.logs.map((_, i) => i))
    const [, diff] = Object.entries(fromRpc.stateDiff)[0]!
    expect(typeof diff.balance).toBe('bigint')
  })
})
