// State-root verification against a real chain: anvil mines multi-transaction blocks, the full
// state before each comes from anvil_dumpState, and the post-state root computed from the
// engine's diff must equal the header's stateRoot.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { concatHex, createWalletClient, http, numberToHex, padHex, type Address, type Hash, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { anvil as anvilChain } from 'viem/chains'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { executeBlock, stateRoot, verifyBlock, type Prestate, type RpcBlock } from '../dist/index.js'
import { repoRoot } from './helpers.js'
import { anvilBinary, startAnvil, type Anvil } from './support/anvil-state.js'

const haveAnvil = anvilBinary() !== undefined
if (!haveAnvil) console.warn('[parallel-evm tests] anvil (npm @foundry-rs/anvil) not installed: anvil state-root suite skipped')

// Runtime: with 64 bytes of calldata, SSTORE(calldata[0..32], calldata[32..64]); otherwise REVERT.
const RUNTIME = '0x3660401460' + '0c57600060' + '00fd5b6020' + '3560003555' + '00'
// Constructor: slot 1 = 0x2a, slot 2 = 7, then return the 21-byte runtime that follows it.
const INIT = ('0x602a600155' + '6007600255' + '601580601560003960' + '00f3' + RUNTIME.slice(2)) as Hex
// Constructor: slot 0 = 1, then return the 2-byte runtime CALLER SELFDESTRUCT.
const SELF_DESTRUCT_INIT = '0x6001600055600280601060003960' + '00f333ff'
const chain = { chainId: 31337, hardfork: 'cancun' }
const HISTORY = '0x0000f90827f1c53a10cb7a02335b175320002935'
const DEAD = '0x000000000000000000000000000000000000dead' as Address

const word = (n: number | bigint) => padHex(numberToHex(n), { size: 32 })
const store = (slot: number, value: number) => concatHex([word(slot), word(value)])

type Mined = { block: RpcBlock; pre: Prestate; receipts: { cumulativeGasUsed: Hex; status: Hex; contractAddress: Address | null }[] }

describe.skipIf(!haveAnvil)('anvil: state root', () => {
  let anvil: Anvil
  let accounts: Address[]
  let contract: Address
  const mined: Mined[] = []

  /** Sends the transactions into the mempool, mines one block, and keeps the state from before it. */
  async function mine(txs: Record<string, unknown>[]): Promise<Mined> {
    const pre = await anvil.fullState()
    for (const tx of txs) await anvil.rpc<Hash>('eth_sendTransaction', [tx])
    await anvil.rpc('evm_mine')
    const block = await anvil.rpc<RpcBlock>('eth_getBlockByNumber', ['latest', true])
    const receipts = await anvil.rpc<Mined['receipts']>('eth_getBlockReceipts', [block.number])
    expect(block.transactions).toHaveLength(txs.length)
    const m = { block, pre, receipts }
    mined.push(m)
    return m
  }

  beforeAll(async () => {
    // fifo: transactions stay in the order sent.
    anvil = await startAnvil(['--hardfork', 'cancun', '--order', 'fifo'])
    accounts = await anvil.rpc<Address[]>('eth_accounts')
    const gas = numberToHex(200_000)
    // Block 1: transfers (one creating an account) and a deployment writing two slots.
    const b1 = await mine([
      { from: accounts[0], to: accounts[1], value: numberToHex(10n ** 18n) },
      { from: accounts[1], to: '0x00000000000000000000000000000000c0ffee01', value: numberToHex(5n * 10n ** 17n) },
      { from: accounts[2], data: INIT, gas },
    ])
    contract = b1.receipts[2]!.contractAddress!.toLowerCase() as Address
    // Block 2: a new slot, an overwritten slot, a reverted call, another transfer.
    await mine([
      { from: accounts[4], to: contract, data: store(3, 5), gas },
      { from: accounts[5], to: contract, data: store(2, 8), gas },
      { from: accounts[6], to: contract, data: '0x', gas },
      { from: accounts[0], to: accounts[7], value: numberToHex(12345) },
    ])
    // Block 3: a slot cleared to zero, and a zero-value call to an empty address (EIP-161).
    await mine([
      { from: accounts[5], to: contract, data: store(1, 0), gas },
      { from: accounts[3], to: DEAD, value: '0x0', gas },
    ])
  }, 60_000)

  afterAll(async () => {
    await anvil?.stop()
  })

  const checksOf = async (i: number, mode: 'sequential' | 'parallel') => {
    const { block, pre, receipts } = mined[i]!
    const result = await executeBlock({ block, state: pre, chain, mode, threads: 2 })
    const report = await verifyBlock({ block, result, state: pre, chain, fullState: true, expectedReceipts: receipts, crossCheck: true })
    return { result, report, byName: Object.fromEntries(report.checks.map((c) => [c.name, c])) }
  }

  it('mined the intended blocks', () => {
    expect(mined).toHaveLength(3)
    expect(contract).toMatch(/^0x/)
    expect(mined[1]!.receipts.map((r) => r.status)).toEqual(['0x1', '0x1', '0x0', '0x1'])
  })

  it.each([0, 1])('block %i: every check passes, the state root equals the header', async (i) => {
    for (const mode of ['sequential', 'parallel'] as const) {
      const { block } = mined[i]!
      const { report, byName } = await checksOf(i, mode)
      expect(byName.stateRoot).toMatchObject({ status: 'passed', expected: block.stateRoot, actual: block.stateRoot })
      for (const name of ['gasUsed', 'receiptsRoot', 'logsBloom', 'cumulativeGasUsed']) expect(byName[name]!.status, name).toBe('passed')
      expect(byName.crossCheck!.status).not.toBe('failed')
      expect(report.passed).toBe(true)
    }
  })

  it('verify CLI --full-state on an anvil block written as a fixture folder', () => {
    const { block, pre, receipts } = mined[1]!
    const dir = mkdtempSync(join(tmpdir(), 'pevm-anvil-'))
    try {
      writeFileSync(join(dir, 'block.json'), JSON.stringify(block))
      writeFileSync(join(dir, 'prestate.json'), JSON.stringify(pre))
      writeFileSync(join(dir, 'chain.json'), JSON.stringify(chain))
      writeFileSync(join(dir, 'receipts.json'), JSON.stringify(receipts))
      const main = join(repoRoot, 'dist', 'cli', 'main.js')
      const r = spawnSync('node', [main, 'verify', dir, '--full-state', '--cross-check', '--json', '--threads', '2'], { encoding: 'utf8' })
      expect(r.status, r.stderr).toBe(0)
      const line = JSON.parse(r.stdout) as { passed: boolean; checks: { name: string; status: string; actual?: string }[] }
      expect(line.passed).toBe(true)
      expect(line.checks.find((c) => c.name === 'stateRoot')).toMatchObject({ status: 'passed', actual: block.stateRoot })
      expect(line.checks.find((c) => c.name === 'cumulativeGasUsed')!.status).toBe('passed')
      // Without --full-state the root is not checked.
      const plain = spawnSync('node', [main, 'verify', dir], { encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '', NO_COLOR: '1' } })
      expect(plain.status).toBe(0)
      expect(plain.stdout).toMatch(/stateRoot\s+n\/a/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("the parent state root: the full state before block 2 hashes to block 1's stateRoot", async () => {
    expect(await stateRoot(mined[1]!.pre)).toBe(mined[0]!.block.stateRoot)
    expect(await stateRoot(mined[2]!.pre)).toBe(mined[1]!.block.stateRoot)
  })

  // Anvil keeps a slot cleared to zero and a touched empty account in its in-memory state and
  // hashes both into its header's stateRoot; Ethereum's trie drops zero slots and EIP-161
  // deletes touched empty accounts. The engine follows Ethereum, so this block's root differs
  // from anvil's header, and only by those two entries.
  it("block 2 (slot cleared, empty account touched): the Ethereum root, which anvil's header is not", async () => {
    const { block } = mined[2]!
    const { result, byName } = await checksOf(2, 'sequential')
    for (const name of ['gasUsed', 'receiptsRoot', 'logsBloom', 'cumulativeGasUsed']) expect(byName[name]!.status, name).toBe('passed')
    expect(byName.stateRoot).toMatchObject({ status: 'failed', expected: block.stateRoot })
    const diff = Object.fromEntries(Object.entries(result.stateDiff).map(([a, d]) => [a.toLowerCase(), d]))
    expect(diff[contract]!.storage).toEqual({ [word(1)]: word(0) })
    expect(Object.keys(diff)).not.toContain(DEAD)

    const after = await anvil.fullState()
    expect(after[DEAD]).toMatchObject({ balance: '0x0', nonce: 0 })
    expect(after[contract]!.storage![word(1)]).toBe(word(0))
    // Without those two entries, anvil's own post-state hashes to the engine's root.
    const { [DEAD]: _dead, ...ethereum } = after
    expect(await stateRoot(ethereum)).toBe(byName.stateRoot!.actual)
  })
  it('a pre-state that is not the one the block ran on fails the state root check', async () => {
    const { block, pre } = mined[0]!
    // An account the block does not touch: only the state root can notice.
    const key = accounts[9]!.toLowerCase() as Address
    expect(pre[key]).toBeDefined()
    const altered: Prestate = { ...pre, [key]: { ...pre[key], balance: '0x1' } }
    const result = await executeBlock({ block, state: altered, chain })
    const report = await verifyBlock({ block, result, state: altered, chain, fullState: true })
    const failed = report.checks.filter((c) => c.status === 'failed').map((c) => c.name)
    expect(failed).toEqual(['stateRoot'])
    expect(report.passed).toBe(false)
  })

  it('a parallel result that differs from sequential is named by transaction and location', async () => {
    const { block, pre } = mined[1]!
    // Slot 2 held 7; with 0 before the block, writing 8 costs a fresh slot's gas.
    const skewed: Prestate = { ...pre, [contract]: { ...pre[contract], storage: { ...pre[contract]!.storage, [word(2)]: word(0) } } }
    const wrong = await executeBlock({ block, state: skewed, chain, mode: 'parallel', threads: 2 })
    expect(wrong.stats.mode).toBe('parallel')
    const report = await verifyBlock({ block, result: wrong, state: pre, chain, crossCheck: true })
    const cross = report.checks.find((c) => c.name === 'crossCheck')!
    expect(cross).toMatchObject({ status: 'failed', txIndex: 1, location: 'receipts[1].gasUsed' })
    expect(cross.expected).not.toBe(cross.actual)
  })
})

// Before Cancun, SELFDESTRUCT deletes the account and its storage. Anvil keeps the destroyed
// account as an empty one (no storage) in its state and its stateRoot; Ethereum removes it.
describe.skipIf(!haveAnvil)('anvil (shanghai): self-destruct', () => {
  let anvil: Anvil
  afterAll(async () => {
    await anvil?.stop()
  })

  it('a destroyed account with storage leaves the trie; the next block matches anvil again', async () => {
    anvil = await startAnvil(['--hardfork', 'shanghai', '--order', 'fifo'])
    const shanghai = { chainId: 31337, hardfork: 'shanghai' }
    const accounts = await anvil.rpc<Address[]>('eth_accounts')
    const gas = numberToHex(200_000)
    const mineOne = async (txs: Record<string, unknown>[]) => {
      const pre = await anvil.fullState()
      for (const tx of txs) await anvil.rpc('eth_sendTransaction', [tx])
      await anvil.rpc('evm_mine')
      const block = await anvil.rpc<RpcBlock>('eth_getBlockByNumber', ['latest', true])
      const receipts = await anvil.rpc<Mined['receipts']>('eth_getBlockReceipts', [block.number])
      const result = await executeBlock({ block, state: pre, chain: shanghai, mode: 'parallel', threads: 2 })
      const report = await verifyBlock({ block, result, state: pre, chain: shanghai, fullState: true, expectedReceipts: receipts, crossCheck: true })
      return { block, receipts, result, byName: Object.fromEntries(report.checks.map((c) => [c.name, c])) }
    }
    // Constructor: slot 0 = 1; runtime: SELFDESTRUCT to the caller.
    const deployed = await mineOne([{ from: accounts[2], data: SELF_DESTRUCT_INIT, gas }])
    expect(deployed.byName.stateRoot!.status).toBe('passed')
    const victim = deployed.receipts[0]!.contractAddress!.toLowerCase() as Address

    const destroyed = await mineOne([
      { from: accounts[3], to: victim, value: '0x5', gas },
      { from: accounts[4], to: accounts[5], value: '0x1' },
    ])
    for (const name of ['gasUsed', 'receiptsRoot', 'logsBloom', 'cumulativeGasUsed']) expect(destroyed.byName[name]!.status, name).toBe('passed')
    const diff = Object.fromEntries(Object.entries(destroyed.result.stateDiff).map(([a, d]) => [a.toLowerCase(), d]))
    expect(diff[victim]).toMatchObject({ deleted: true, storageCleared: true })
    const after = await anvil.fullState()
    expect(after[victim]).toEqual({ balance: '0x0', nonce: 0, storage: {} })
    expect(destroyed.byName.stateRoot!.status).toBe('failed')
    const { [victim]: _gone, ...ethereum } = after
    expect(await stateRoot(ethereum)).toBe(destroyed.byName.stateRoot!.actual)

    // With the remnant in the pre-state (anvil's view), the next block's root matches anvil's.
    const next = await mineOne([{ from: accounts[4], to: accounts[5], value: '0x1' }])
    expect(next.byName.stateRoot).toMatchObject({ status: 'passed', expected: next.block.stateRoot })
  })
})

// Prague (anvil's default): every block starts with the EIP-2935 system call that stores the
// parent's hash in the history contract; the state root covers that contract's storage.
describe.skipIf(!haveAnvil)('anvil (prague): block-hash history', () => {
  let anvil: Anvil
  afterAll(async () => {
    await anvil?.stop()
  })

  it('the history contract stores the parent hash; roots match anvil', async () => {
    anvil = await startAnvil(['--hardfork', 'prague', '--order', 'fifo'])
    const prague = { chainId: 31337, hardfork: 'prague' }
    const accounts = await anvil.rpc<Address[]>('eth_accounts')
    for (let i = 0; i < 2; i++) {
      const pre = await anvil.fullState()
      await anvil.rpc('eth_sendTransaction', [{ from: accounts[i], to: accounts[i + 1], value: '0x64' }])
      await anvil.rpc('eth_sendTransaction', [{ from: accounts[i + 2], data: INIT, gas: numberToHex(200_000) }])
      await anvil.rpc('evm_mine')
      const block = await anvil.rpc<RpcBlock>('eth_getBlockByNumber', ['latest', true])
      const result = await executeBlock({ block, state: pre, chain: prague, mode: 'parallel', threads: 2 })
      const report = await verifyBlock({ block, result, state: pre, chain: prague, fullState: true, crossCheck: true })
      expect(report.checks.find((c) => c.name === 'stateRoot')).toMatchObject({ status: 'passed', expected: block.stateRoot })
      expect(report.passed).toBe(true)
      const history = Object.entries(result.stateDiff).find(([a]) => a.toLowerCase() === HISTORY)![1]
      const n = Number(BigInt(block.number))
      expect(history.storage).toEqual({ [word((n - 1) % 8191)]: block.parentHash })
    }
  })
})

// Osaka (Fusaka): CLZ (EIP-7939), MODEXP's new pricing (EIP-7883) and the P256VERIFY precompile
// (EIP-7951) each change what a transaction costs or stores; anvil runs them too.
// Runtime: slot 0 = CLZ(1); slot 1 = the word at MODEXP(3, 5, 7)'s output (5, left-aligned);
// a STATICCALL to P256VERIFY (0x100) with empty input, its success in slot 2.
const OSAKA_RUNTIME = ('0x' +
  '6001' +
  '1e' +
  '6000' +
  '55' +
  '6001600052' +
  '6001602052' +
  '6001604052' +
  '6003606053' +
  '6005606153' +
  '6007606253' +
  '6020' +
  '6080' +
  '6063' +
  '6000' +
  '6005' +
  '5a' +
  'fa' +
  '50' +
  '608051' +
  '6001' +
  '55' +
  '6000' +
  '6000' +
  '6000' +
  '6000' +
  '610100' +
  '5a' +
  'fa' +
  '6002' +
  '55' +
  '00') as Hex
const MODEXP = '0x0000000000000000000000000000000000000005' as Address
const P256VERIFY = '0x0000000000000000000000000000000000000100' as Address

describe.skipIf(!haveAnvil)('anvil (osaka): new opcode, repriced and new precompiles', () => {
  let anvil: Anvil
  afterAll(async () => {
    await anvil?.stop()
  })

  it("receipts match anvil, and the state root is anvil's post-state less the precompiles it keeps", async () => {
    anvil = await startAnvil(['--hardfork', 'osaka', '--order', 'fifo'])
    const osaka = { chainId: 31337, hardfork: 'osaka' }
    const accounts = await anvil.rpc<Address[]>('eth_accounts')
    const target = '0x00000000000000000000000000000000000c1a55' as Address
    await anvil.rpc('anvil_setCode', [target, OSAKA_RUNTIME])
    const pre = await anvil.fullState()
    await anvil.rpc('eth_sendTransaction', [{ from: accounts[0], to: target, data: '0x', gas: numberToHex(300_000) }])
    await anvil.rpc('eth_sendTransaction', [{ from: accounts[1], to: accounts[2], value: '0x64' }])
    await anvil.rpc('evm_mine')
    const block = await anvil.rpc<RpcBlock>('eth_getBlockByNumber', ['latest', true])
    const receipts = await anvil.rpc<Mined['receipts']>('eth_getBlockReceipts', [block.number])
    expect(receipts.map((r) => r.status)).toEqual(['0x1', '0x1'])
    // Anvil keeps the two precompiles the call touched as empty accounts in its state and root
    // (the quirk the Cancun suite describes); Ethereum's trie has no empty accounts (EIP-161).
    const after = await anvil.fullState()
    expect(after[MODEXP]).toMatchObject({ balance: '0x0', nonce: 0 })
    const { [MODEXP]: _modexp, [P256VERIFY]: _p256, ...ethereum } = after
    const ethereumRoot = await stateRoot(ethereum)
    for (const mode of ['sequential', 'parallel'] as const) {
      const result = await executeBlock({ block, state: pre, chain: osaka, mode, threads: 2 })
      const report = await verifyBlock({ block, result, state: pre, chain: osaka, fullState: true, expectedReceipts: receipts, crossCheck: true })
      const byName = Object.fromEntries(report.checks.map((c) => [c.name, c]))
      for (const name of ['gasUsed', 'receiptsRoot', 'logsBloom', 'cumulativeGasUsed']) expect(byName[name]!.status, `${mode} ${name}`).toBe('passed')
      expect(byName.crossCheck!.status).not.toBe('failed')
      expect(byName.stateRoot!.actual, mode).toBe(ethereumRoot)
      const diff = Object.entries(result.stateDiff).find(([a]) => a.toLowerCase() === target)![1]
      expect(diff.storage).toEqual({ [word(0)]: word(255), [word(1)]: padHex('0x05', { size: 32, dir: 'right' }), [word(2)]: word(1) })
    }
    // The same block under Prague's rules: CLZ is not an instruction there, MODEXP is cheaper
    // and 0x100 is an empty account.
    const prague = { chainId: 31337, hardfork: 'prague' }
    const wrong = await executeBlock({ block, state: pre, chain: prague })
    const report = await verifyBlock({ block, result: wrong, state: pre, chain: prague, expectedReceipts: receipts })
    expect(report.checks.find((c) => c.name === 'gasUsed')!.status).toBe('failed')
  })
})

// EIP-7702 (Prague): a transaction's authorization sets an account's code to a delegation, and a
// later transaction of the same block already runs the delegated code.
// anvil's first two development keys (its default mnemonic).
const AUTHORITY_KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80'
const SENDER_KEY = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d'

describe.skipIf(!haveAnvil)('anvil (prague): EIP-7702 delegation', () => {
  let anvil: Anvil
  afterAll(async () => {
    await anvil?.stop()
  })

  it('the delegation is in the diff and the next transaction runs its code; roots match anvil', async () => {
    anvil = await startAnvil(['--hardfork', 'prague', '--order', 'fifo'])
    const prague = { chainId: 31337, hardfork: 'prague' }
    const accounts = await anvil.rpc<Address[]>('eth_accounts')
    const delegate = '0x00000000000000000000000000000000000de1e9' as Address
    await anvil.rpc('anvil_setCode', [delegate, RUNTIME])
    const authority = privateKeyToAccount(AUTHORITY_KEY)
    const sender = privateKeyToAccount(SENDER_KEY)
    const wallet = createWalletClient({ chain: anvilChain, transport: http(anvil.url, { retryCount: 0 }) })
    const authorization = await wallet.signAuthorization({ account: authority, contractAddress: delegate, nonce: 0 })
    const pre = await anvil.fullState()
    await wallet.sendTransaction({ account: sender, to: authority.address, data: store(1, 5), authorizationList: [authorization], gas: 200_000n, nonce: 0 })
    // Calls that need the delegation, and one that does not, from other senders (in parallel
    // mode some run before the authorization's transaction is done, and must run again).
    for (const [i, slot] of [
      [3, 2],
      [4, 3],
      [5, 4],
      [6, 5],
    ] as const) {
      await anvil.rpc('eth_sendTransaction', [{ from: accounts[i], to: authority.address, data: store(slot, 7), gas: numberToHex(200_000) }])
    }
    await anvil.rpc('eth_sendTransaction', [{ from: accounts[7], to: accounts[8], value: '0x64' }])
    // A plain transfer to the account delegated earlier in this block: the delegated code runs
    // (and reverts without 64 bytes of call data), so it is not a transfer between plain accounts.
    await anvil.rpc('eth_sendTransaction', [{ from: accounts[9], to: authority.address, value: '0x64', gas: numberToHex(100_000) }])
    await anvil.rpc('evm_mine')
    const block = await anvil.rpc<RpcBlock>('eth_getBlockByNumber', ['latest', true])
    const receipts = await anvil.rpc<Mined['receipts']>('eth_getBlockReceipts', [block.number])
    expect(block.transactions.map((t) => (t as { type: Hex }).type)).toEqual(['0x4', '0x2', '0x2', '0x2', '0x2', '0x2', '0x2'])
    expect(receipts.map((r) => r.status)).toEqual(['0x1', '0x1', '0x1', '0x1', '0x1', '0x1', '0x0'])
    const delegation = concatHex(['0xef0100', delegate])
    for (const mode of ['sequential', 'parallel'] as const) {
      const result = await executeBlock({ block, state: pre, chain: prague, mode, threads: 2 })
      const report = await verifyBlock({ block, result, state: pre, chain: prague, fullState: true, expectedReceipts: receipts, crossCheck: true })
      const byName = Object.fromEntries(report.checks.map((c) => [c.name, c]))
      expect(byName.stateRoot, mode).toMatchObject({ status: 'passed', expected: block.stateRoot })
      expect(report.passed, mode).toBe(true)
      const diff = Object.entries(result.stateDiff).find(([a]) => a.toLowerCase() === authority.address.toLowerCase())![1]
      expect(diff.code, mode).toBe(delegation)
      expect(diff.nonce, mode).toBe(1)
      expect(diff.storage, mode).toEqual({ [word(1)]: word(5), [word(2)]: word(7), [word(3)]: word(7), [word(4)]: word(7), [word(5)]: word(7) })
    }

    // Next block: plain transfers only: the delegated account's own, and one to it (its
    // delegated code reverts without 64 bytes of call data). The transfer engines must not take
    // it for an account without code.
    const next = await anvil.fullState()
    // The delegated account still sends transactions of its own (EIP-3607 allows delegations).
    await wallet.sendTransaction({ account: authority, to: accounts[8], value: 100n, gas: 21_000n })
    for (const [from, to] of [
      [accounts[3], accounts[9]],
      [accounts[4], authority.address],
      [accounts[5], accounts[8]],
    ] as const) {
      await anvil.rpc('eth_sendTransaction', [{ from, to, value: '0x64', gas: numberToHex(100_000) }])
    }
    await anvil.rpc('evm_mine')
    const transfers = await anvil.rpc<RpcBlock>('eth_getBlockByNumber', ['latest', true])
    const transferReceipts = await anvil.rpc<Mined['receipts']>('eth_getBlockReceipts', [transfers.number])
    const senders = transfers.transactions.map((t) => (t as { from: Address }).from.toLowerCase())
    expect(senders).toHaveLength(4)
    expect(senders[0]).toBe(authority.address.toLowerCase())
    const statuses = transferReceipts.map((r) => (r.status === '0x1' ? 'success' : 'reverted'))
    expect(statuses.filter((x) => x === 'reverted')).toHaveLength(1)
    for (const mode of ['auto', 'sequential', 'parallel'] as const) {
      const result = await executeBlock({ block: transfers, state: next, chain: prague, mode, threads: 2 })
      expect(
        result.receipts.map((r) => r.status),
        mode,
      ).toEqual(statuses)
      const report = await verifyBlock({ block: transfers, result, state: next, chain: prague, fullState: true, expectedReceipts: transferReceipts })
      expect(report.passed, mode).toBe(true)
    }
  })
})
