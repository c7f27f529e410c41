// Bad inputs reject with typed errors and stable codes; panics become errors; the process lives on.
import { describe, expect, it } from 'vitest'
import { executeBlock, generateBlock, InternalError, InvalidInputError, InvalidTransactionError, ParallelEvmError, prepareState, type GeneratedBlock } from '../dist/index.js'
import { __debugPanic } from '../dist/execute.js'

async function small(): Promise<GeneratedBlock> {
  return generateBlock('independent', 3)
}

async function rejection(p: Promise<unknown>): Promise<ParallelEvmError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  )
  expect(e).toBeInstanceOf(ParallelEvmError)
  return e as ParallelEvmError
}

describe('errors', () => {
  it('a generated block runs (baseline for the cases below)', async () => {
    const g = await small()
    const r = await executeBlock({ block: g.block, state: g.prestate, chain: g.chain })
    expect(r.verification.gasUsed).toBe(true)
    expect(r.receipts.every((x) => x.status === 'success')).toBe(true)
  })

  it('malformed block JSON → INVALID_INPUT', async () => {
    const g = await small()
    const e = await rejection(executeBlock({ block: Buffer.from('{"number": "0x1",'), state: g.prestate }))
    expect(e).toBeInstanceOf(InvalidInputError)
    expect(e.code).toBe('INVALID_INPUT')
    expect(e.details).toMatch(/block JSON/)
    expect(e.shortMessage).toBe('Invalid input.')
  })

  it('malformed hex → INVALID_INPUT', async () => {
    const g = await small()
    const block = { ...g.block, miner: '0xnot-hex' }
    const e = await rejection(executeBlock({ block, state: g.prestate, chain: g.chain }))
    expect(e.code).toBe('INVALID_INPUT')
    const [addr] = Object.keys(g.prestate)
    const bad = await rejection(prepareState({ [addr!]: { balance: '0xzz', nonce: 0, storage: {} } } as never))
    expect(bad.code).toBe('INVALID_INPUT')
    expect(bad.details).toMatch(/balance/)
  })

  it('a field of the wrong type → INVALID_INPUT', async () => {
    const g = await small()
    const block = { ...g.block, gasLimit: { not: 'a quantity' } }
    const e = await rejection(executeBlock({ block, state: g.prestate, chain: g.chain }))
    expect(e.code).toBe('INVALID_INPUT')
    // And wrong types at the API surface, caught before the engine.
    expect((await rejection(executeBlock({ block: 42 as never, state: g.prestate }))).code).toBe('INVALID_INPUT')
    expect((await rejection(executeBlock({ block: g.block, state: g.prestate, threads: -1 }))).code).toBe('INVALID_INPUT')
    expect((await rejection(executeBlock({ block: g.block, state: g.prestate, mode: 'fast' as never }))).code).toBe('INVALID_INPUT')
    expect((await rejection(executeBlock({ block: g.block, state: 'nope' as never }))).code).toBe('INVALID_INPUT')
  })

  it('a sender missing from the pre-state cannot pay → INVALID_TRANSACTION with txIndex', async () => {
    const g = await small()
    // An absent account does not exist: not an error by itself, but it has no balance for gas.
    const sender = (g.block.transactions[1] as { from: string }).from
    const prestate = Object.fromEntries(Object.entries(g.prestate).filter(([a]) => a !== sender))
    const e = await rejection(executeBlock({ block: g.block, state: prestate, chain: g.chain, mode: 'parallel', threads: 2 }))
    expect(e).toBeInstanceOf(InvalidTransactionError)
    expect(e.code).toBe('INVALID_TRANSACTION')
    expect((e as InvalidTransactionError).txIndex).toBe(1)
  })

  it('a panic in the engine rejects with an Error and the process continues', async () => {
    const e = await rejection(__debugPanic())
    expect(e).toBeInstanceOf(InternalError)
    expect(e.code).toBe('INTERNAL_ERROR')
    expect(e.details).toMatch(/panic/)
    // Still alive and still working.
    const g = await small()
    const r = await executeBlock({ block: g.block, state: g.prestate, chain: g.chain })
    expect(r.gasUsed).toBe(63_000n)
  })
})
