// A long block executes off the JS thread: timers keep firing while it runs.
import { numberToHex } from 'viem'
import { describe, expect, it } from 'vitest'
import { executeBlock, generateBlock, prepareBlock, prepareState } from '../dist/index.js'

// JUMPDEST PUSH1 0 JUMP: loops until the transaction's gas runs out.
const LOOP = '0x5b600056'

describe('event loop', () => {
  it('stays free during a long execution', async () => {
    const g = await generateBlock('independent', 8)
    const loopAt = '0x00000000000000000000000000000000000100ff'
    // Each transaction burns 60M gas in the loop (signatures are not re-checked: the engine uses
    // `from`); a raised block gas limit makes one execution last long enough to measure.
    const transactions = g.block.transactions.map((tx) => ({ ...tx, to: loopAt, value: '0x0', gas: numberToHex(60_000_000) }))
    const header = { gasLimit: numberToHex(480_000_000), gasUsed: numberToHex(480_000_000) }
    const block = await prepareBlock({ ...g.block, ...header, transactions }, { chain: g.chain })
    const state = await prepareState({ ...g.prestate, [loopAt]: { balance: '0x0', nonce: 1, code: LOOP, storage: {} } })

    const ticks: number[] = []
    const timer = setInterval(() => ticks.push(performance.now()), 5)
    const started = performance.now()
    let runs = 0
    // Repeat until the work has lasted long enough to tell a blocked loop from a free one.
    while (runs < 3 || performance.now() - started < 600) {
      const r = await executeBlock({ block, state, mode: 'sequential' })
      expect(r.receipts.every((x) => x.status === 'reverted')).toBe(true)
      runs++
    }
    const elapsed = performance.now() - started
    clearInterval(timer)
    const gaps = ticks.slice(1).map((t, i) => t - ticks[i]!)
    const worst = Math.max(...gaps)
    console.log(`event loop: ${runs} runs in ${elapsed.toFixed(0)} ms, ${ticks.length} ticks, worst gap ${worst.toFixed(1)} ms`)
    expect(ticks.length).toBeGreaterThan(elapsed / 5 / 4)
    // One execution takes far longer than any stall the loop may show.
    const single = elapsed / runs
    expect(single).toBeGreaterThan(60)
    expect(worst).toBeLessThan(single / 2)
  })
})
