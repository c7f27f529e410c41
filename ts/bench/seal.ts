// Finishing generated blocks with the engine's own sequential run: header fields only execution
// can know (gas used, logs bloom, receipts root), and the post-state of a setup block as the
// pre-state of the block that follows it.
import { numberToHex, type Address, type Hex } from 'viem'
import { executeBlock } from '../execute.js'
import { InternalError } from '../errors.js'
import type { GeneratedBlock } from '../generate.js'
import type { StateDiff } from '../result.js'
import type { Prestate } from '../state.js'

/**
 * Executes the block sequentially, fails if any transaction reverted (a generator bug: every
 * generated transaction is meant to succeed), and writes gasUsed, logsBloom and receiptsRoot into
 * its header. Returns the result for callers that need the post-state.
 */
export async function sealBlock(g: GeneratedBlock) {
  const result = await executeBlock({ block: g.block, state: g.prestate, chain: g.chain, mode: 'sequential', threads: 1 })
  const failed = result.receipts.filter((r) => r.status !== 'success')
  if (failed.length > 0) {
    throw new InternalError(`${g.name}: ${failed.length} generated transaction(s) reverted, first at index ${failed[0]!.transactionIndex}`)
  }
  g.block.gasUsed = numberToHex(result.gasUsed)
  g.block.logsBloom = result.logsBloom
  g.block.receiptsRoot = result.receiptsRoot
  return result
}

/** The state after a block: its pre-state with the block's diff applied. */
export function applyDiff(prestate: Prestate, diff: StateDiff): Prestate {
  const out: Prestate = { ...prestate }
  for (const [address, d] of Object.entries(diff) as [Address, StateDiff[Address]][]) {
    if (d.deleted) {
      delete out[address]
      continue
    }
    const before = d.created || d.storageCleared ? undefined : prestate[address]
    out[address] = {
      balance: numberToHex(d.balance),
      nonce: d.nonce,
      code: d.code ?? before?.code,
      storage: { ...(before?.storage ?? {}), ...d.storage } as Record<Hex, Hex>,
    }
  }
  return out
}
