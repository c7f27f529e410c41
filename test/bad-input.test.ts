// Bad input through the public API: every row of this table (the "Bad input" table of docs/reliability.md)
// yields its documented typed error, or the protocol's result, never a crash, a hang (each row
// runs under a timeout) or a silent wrong answer.
import { numberToHex, type Hex } from 'viem'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  executeBlock,
  generateBlock,
  InvalidInputError,
  InvalidTransactionError,
  ParallelEvmError,
  prepareBlock,
  prepareState,
  type ExecuteBlockParameters,
  type ExecutionResult,
  type GeneratedBlock,
} from '../dist/index.js'
import { executeNative } from '../dist/execute.js'
import { sameOutcome } from '../dist/result.js'

type Tx = Record<string, unknown>
type Row = {
  name: string
  params: (g: GeneratedBlock) => ExecuteBlockParameters | Promise<ExecuteBlockParameters>
  /** Expected error code (and class, and txIndex), or a check of the result. */
  code?: ParallelEvmError['code']
  txIndex?: number
  details?: RegExp
  result?: (r: ExecutionResult, g: GeneratedBlock) => void
}

const ROW_TIMEOUT = 20_000
const over256 = `0x1${'0'.repeat(64)}` as Hex
const txs = (g: GeneratedBlock) => g.block.transactions as Tx[]
const withTx = (g: GeneratedBlock, i: number, patch: Tx) => ({
  ...g.block,
  transactions: txs(g).map((t, j) => (j === i ? { ...t, ...patch } : t)),
})
const without = (o: Tx, key: string) => Object.fromEntries(Object.entries(o).filter(([k]) => k !== key))
const base = (g: GeneratedBlock, block: unknown = g.block): ExecuteBlockParameters => ({
  block: block as ExecuteBlockParameters['block'],
  state: g.prestate,
  chain: g.chain,
  mode: 'parallel',
  threads: 2,
})
const sender = (g: GeneratedBlock, i: number) => txs(g)[i]!.from as string

const rows: Row[] = [
  // Unparseable input.
  { name: 'truncated block JSON', params: (g) => ({ ...base(g), block: Buffer.from(JSON.stringify(g.block)).subarray(0, 200) }), code: 'INVALID_INPUT', details: /block JSON/ },
  { name: 'malformed pre-state JSON', params: (g) => ({ ...base(g), state: Buffer.from('{"0xab": {"balance": ') }), code: 'INVALID_INPUT', details: /prestate JSON/ },
  { name: 'block JSON that is not an object', params: (g) => ({ ...base(g), block: Buffer.from('[1, 2, 3]') }), code: 'INVALID_INPUT' },
  { name: 'address of 19 bytes', params: (g) => base(g, withTx(g, 0, { to: '0x' + '11'.repeat(19) })), code: 'INVALID_INPUT' },
  { name: 'hash of 31 bytes', params: (g) => base(g, { ...g.block, parentHash: '0x' + '22'.repeat(31) }), code: 'INVALID_INPUT' },
  { name: 'odd-length hex data', params: (g) => base(g, withTx(g, 0, { input: '0x123' })), code: 'INVALID_INPUT' },
  { name: 'non-hex characters', params: (g) => base(g, { ...g.block, miner: '0xnot-hex' }), code: 'INVALID_INPUT' },
  { name: 'pre-state address of 21 bytes', params: (g) => ({ ...base(g), state: { ...g.prestate, ['0x' + '33'.repeat(21)]: { balance: '0x1' } } }), code: 'INVALID_INPUT' },
  {
    name: 'storage key of 33 bytes',
    params: (g) => ({ ...base(g), state: { ...g.prestate, [sender(g, 0)]: { balance: '0x1', storage: { ['0x' + '44'.repeat(33)]: '0x01' } } } }),
    code: 'INVALID_INPUT',
  },
  { name: 'balance over 256 bits', params: (g) => ({ ...base(g), state: { ...g.prestate, [sender(g, 0)]: { balance: over256 } } }), code: 'INVALID_INPUT', details: /balance/ },
  { name: 'nonce over 64 bits', params: (g) => ({ ...base(g), state: { ...g.prestate, [sender(g, 0)]: { balance: '0x1', nonce: '0x10000000000000000' } } }), code: 'INVALID_INPUT', details: /nonce/ },
  { name: 'transaction value over 256 bits', params: (g) => base(g, withTx(g, 1, { value: over256 })), code: 'INVALID_INPUT' },
  { name: 'block gas limit over 64 bits', params: (g) => base(g, { ...g.block, gasLimit: '0x10000000000000000' }), code: 'INVALID_INPUT' },
  { name: 'a quantity of the wrong type', params: (g) => base(g, { ...g.block, gasLimit: { not: 'a quantity' } }), code: 'INVALID_INPUT' },
  { name: 'block without number', params: (g) => base(g, without(g.block, 'number')), code: 'INVALID_INPUT' },
  { name: "transaction without 'from'", params: (g) => base(g, { ...g.block, transactions: [without(txs(g)[0]!, 'from')] }), code: 'INVALID_INPUT', details: /from/ },
  { name: 'transaction without gas', params: (g) => base(g, { ...g.block, transactions: [without(txs(g)[0]!, 'gas')] }), code: 'INVALID_INPUT', details: /transaction 0/ },
  {
    name: 'transaction without signature',
    params: (g) => base(g, { ...g.block, transactions: [txs(g)[0]!, without(txs(g)[1]!, 'r')] }),
    code: 'INVALID_INPUT',
    details: /transaction 1: missing field `r`/,
  },
  { name: 'transactions given as hashes', params: (g) => base(g, { ...g.block, transactions: txs(g).map((t) => t.hash) }), code: 'INVALID_INPUT', details: /full objects/ },
  { name: 'unknown transaction type (JSON-RPC byte)', params: (g) => base(g, withTx(g, 2, { type: '0x7f' })), code: 'INVALID_INPUT', details: /transaction 2: .*0x7f/ },
  {
    name: 'unknown transaction type (viem name)',
    params: (g) => base(g, { ...g.block, number: 1_000_000n, transactions: [{ ...txs(g)[0]!, type: 'eip9999' }] }),
    code: 'INVALID_INPUT',
    details: /eip9999/,
  },
  { name: 'unknown hardfork', params: (g) => ({ ...base(g), chain: { hardfork: 'atlantis' } }), code: 'INVALID_INPUT', details: /hardfork/ },
  // API misuse, caught before the engine.
  { name: 'block of the wrong JS type', params: (g) => ({ ...base(g), block: 42 as never }), code: 'INVALID_INPUT' },
  { name: 'state of the wrong JS type', params: (g) => ({ ...base(g), state: 'nope' as never }), code: 'INVALID_INPUT' },
  { name: 'threads out of range', params: (g) => ({ ...base(g), threads: 0 }), code: 'INVALID_INPUT' },
  { name: 'unknown mode', params: (g) => ({ ...base(g), mode: 'fast' as never }), code: 'INVALID_INPUT' },
  { name: 'verifySignatures of the wrong type', params: (g) => ({ ...base(g), verifySignatures: 'yes' as never }), code: 'INVALID_INPUT' },
  // Transactions the protocol rejects: the block is invalid, at the first offending transaction.
  { name: 'nonce too high', params: (g) => base(g, withTx(g, 1, { nonce: '0x5' })), code: 'INVALID_TRANSACTION', txIndex: 1, details: /nonce/ },
  {
    name: 'nonce too low',
    params: (g) => ({ ...base(g), state: { ...g.prestate, [sender(g, 2)]: { balance: numberToHex(10n ** 18n), nonce: 3 } } }),
    code: 'INVALID_TRANSACTION',
    txIndex: 2,
    details: /nonce/,
  },
  { name: 'insufficient balance', params: (g) => ({ ...base(g), state: { ...g.prestate, [sender(g, 2)]: { balance: '0x1' } } }), code: 'INVALID_TRANSACTION', txIndex: 2, details: /funds/ },
  { name: 'sender missing from the pre-state', params: (g) => ({ ...base(g), state: without(g.prestate as Tx, sender(g, 1)) as never }), code: 'INVALID_TRANSACTION', txIndex: 1 },
  { name: 'block gas limit reached', params: (g) => base(g, { ...g.block, gasLimit: numberToHex(21_000 * 2 + 1) }), code: 'INVALID_TRANSACTION', txIndex: 2, details: /gas left in the block/ },
  { name: 'one transaction over the block gas limit', params: (g) => base(g, withTx(g, 0, { gas: numberToHex(30_000_001) })), code: 'INVALID_TRANSACTION', txIndex: 0 },
  { name: 'gas limit below the intrinsic cost', params: (g) => base(g, withTx(g, 0, { gas: numberToHex(20_999) })), code: 'INVALID_TRANSACTION', txIndex: 0 },
  { name: 'fee cap below the base fee', params: (g) => base(g, { ...g.block, baseFeePerGas: numberToHex(3n * 10n ** 9n) }), code: 'INVALID_TRANSACTION', txIndex: 0 },
  { name: 'transaction for another chain', params: (g) => ({ ...base(g), chain: { chainId: 1, hardfork: 'cancun' } }), code: 'INVALID_TRANSACTION', txIndex: 0 },
  // Signatures: checked on request (the engine otherwise trusts `from`, as the serving node recovered it).
  {
    name: 'tampered signature, verifySignatures',
    params: (g) => ({ ...base(g, withTx(g, 1, { r: numberToHex(12345n, { size: 32 }) })), verifySignatures: true }),
    code: 'INVALID_TRANSACTION',
    txIndex: 1,
    details: /signature/,
  },
  {
    name: 'signature of another sender, verifySignatures',
    params: (g) => ({ ...base(g, withTx(g, 2, { from: sender(g, 0) })), verifySignatures: true }),
    code: 'INVALID_TRANSACTION',
    txIndex: 2,
    details: /recovers to/,
  },
  {
    name: 'signature s above n/2 (EIP-2), verifySignatures',
    params: (g) => ({ ...base(g, withTx(g, 0, { s: '0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140' })), verifySignatures: true }),
    code: 'INVALID_TRANSACTION',
    txIndex: 0,
    details: /signature/,
  },
  {
    name: 'valid signatures, verifySignatures',
    params: (g) => ({ ...base(g), verifySignatures: true }),
    result: (r) => expect(r.receipts.map((x) => x.status)).toEqual(['success', 'success', 'success']),
  },
  // Valid edge cases with a defined result.
  {
    name: 'empty block',
    params: (g) => base(g, { ...g.block, transactions: [], gasUsed: '0x0' }),
    result: (r) => {
      expect(r.receipts).toEqual([])
      expect(r.gasUsed).toBe(0n)
      expect(r.verification.gasUsed).toBe(true)
    },
  },
  {
    name: 'receiver missing from the pre-state (it does not exist yet)',
    params: (g) => base(g),
    result: (r, g) => {
      const to = (txs(g)[0]!.to as string).toLowerCase()
      const entry = Object.entries(r.stateDiff).find(([a]) => a.toLowerCase() === to)?.[1]
      expect(entry?.created).toBe(true)
      expect(entry?.balance).toBe(BigInt(txs(g)[0]!.value as string))
    },
  },
  {
    name: "unverified 'from' is trusted",
    params: (g) => base(g, withTx(g, 2, { from: sender(g, 0), nonce: '0x1' })),
    result: (r) => expect(r.receipts.map((x) => x.status)).toEqual(['success', 'success', 'success']),
  },
]

describe('bad input table', () => {
  let g: GeneratedBlock
  beforeAll(async () => {
    g = await generateBlock('independent', 3)
  })

  for (const row of rows) {
    it(
      row.name,
      async () => {
        const outcome = await executeBlock(await row.params(g)).then(
          (r) => ({ ok: true as const, r }),
          (e: unknown) => ({ ok: false as const, e }),
        )
        if (row.result) {
          if (!outcome.ok) throw outcome.e
          row.result(outcome.r, g)
          return
        }
        expect(outcome.ok, 'must be rejected').toBe(false)
        const e = (outcome as { e: unknown }).e
        expect(e).toBeInstanceOf(ParallelEvmError)
        const err = e as ParallelEvmError
        expect(err.code, err.message).toBe(row.code)
        expect(err).toBeInstanceOf(row.code === 'INVALID_INPUT' ? InvalidInputError : InvalidTransactionError)
        expect(err.shortMessage.length).toBeGreaterThan(0)
        if (row.txIndex !== undefined) expect((err as InvalidTransactionError).txIndex).toBe(row.txIndex)
        if (row.details) expect(err.details).toMatch(row.details)
      },
      ROW_TIMEOUT,
    )
  }

  it('every mode rejects an invalid transaction identically', async () => {
    const block = withTx(g, 1, { nonce: '0x9' })
    const errors = await Promise.all(
      (['sequential', 'parallel', 'auto'] as const).map((mode) =>
        executeBlock({ ...base(g, block), mode }).then(
          () => undefined,
          (e: ParallelEvmError) => [e.code, (e as InvalidTransactionError).txIndex, e.details],
        ),
      ),
    )
    expect(errors[0]).toBeDefined()
    expect(errors[1]).toEqual(errors[0])
    expect(errors[2]).toEqual(errors[0])
  })

  it('a block with 20,000 transactions runs, in parallel exactly as sequentially', async () => {
    // Distinct senders, each funded; signatures are not re-checked (the engine uses `from`).
    const n = 20_000
    const template = txs(g)[0]!
    const prestate: Record<string, unknown> = {}
    const transactions = Array.from({ length: n }, (_, i) => {
      const from = numberToHex(0x10000000n + BigInt(i), { size: 20 })
      prestate[from] = { balance: numberToHex(10n ** 18n) }
      return { ...template, from, to: numberToHex(0x20000000n + BigInt(i % 97), { size: 20 }), hash: numberToHex(BigInt(i + 1), { size: 32 }), transactionIndex: numberToHex(i) }
    })
    const header = { gasLimit: numberToHex(21_000 * n), gasUsed: numberToHex(21_000 * n), transactions }
    const block = await prepareBlock({ ...g.block, ...header }, { chain: g.chain })
    const state = await prepareState(prestate as never)
    expect(block.txCount).toBe(n)
    const seq = await executeNative({ block, state, mode: 'sequential' })
    const par = await executeNative({ block, state, mode: 'parallel', threads: 4 })
    expect(sameOutcome(seq, par)).toBe(true)
    const r = await executeBlock({ block, state, mode: 'parallel', threads: 2 })
    expect(r.gasUsed).toBe(21_000n * BigInt(n))
    expect(r.receipts.length).toBe(n)
    expect(r.verification.gasUsed).toBe(true)
  }, 120_000)
})
