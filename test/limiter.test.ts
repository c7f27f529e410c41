import { describe, expect, it } from 'vitest'
import { ThreadBudget } from '../dist/limiter.js'

describe('ThreadBudget', () => {
  it('never runs more threads than its capacity and serves calls in order', async () => {
    const budget = new ThreadBudget(4)
    let inUse = 0
    let peak = 0
    const order: number[] = []
    const job = (i: number, threads: number) =>
      budget.run(threads, async () => {
        inUse += Math.min(threads, 4)
        peak = Math.max(peak, inUse)
        order.push(i)
        await new Promise((r) => setTimeout(r, 5))
        inUse -= Math.min(threads, 4)
      })
    await Promise.all([job(0, 2), job(1, 2), job(2, 4), job(3, 1), job(4, 8), job(5, 1)])
    expect(peak).toBeLessThanOrEqual(4)
    expect(order).toEqual([0, 1, 2, 3, 4, 5])
  })
})
