// Blocks mined by a real anvil (ERC20 transfers and approvals, Uniswap V2 swaps, a revert, a
// contract creation) executed through every RPC state adapter; every receipt must equal anvil's
// and the header checks must pass. A fault-injecting proxy shows retries and typed failures; the
// cache makes a re-run free of RPC calls.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeDeployData, getAddress, type Address, type Hash, type Hex } from 'viem'
import { executeBlock, loadBlock, ParallelEvmError, rpcState, RpcError, RpcResponseError, StateCache, type ChainConfig, type ExecutionResult, type RpcBlock } from '../dist/index.js'
import { erc20, startAnvil, uniswapV2, type Anvil } from './support/anvil.js'
import { startFaultyProxy, type FaultyProxy } from './support/faulty-proxy.js'
import { repoRoot } from './helpers.js'

const E18 = 10n ** 18n
const chain: ChainConfig = { chainId: 31337, hardfork: 'cancun' }

type RpcReceipt = { status: Hex; gasUsed: Hex; cumulativeGasUsed: Hex; contractAddress: Address | null; logs: { address: Address; topics: Hex[]; data: Hex }[] }
type Header = { gasUsed: Hex; logsBloom: Hex; receiptsRoot: Hash }

let anvil: Anvil
let proxy: FaultyProxy
let cacheDir: string
/** Blocks of many transactions mined for the checks. */
const blocks: bigint[] = []
let tokenA: Address

async function expectMatchesAnvil(result: ExecutionResult, number: bigint) {
  const receipts = await anvil.rpc<RpcReceipt[]>('eth_getBlockReceipts', [`0x${number.toString(16)}`])
  const header = await anvil.rpc<Header>('eth_getBlockByNumber', [`0x${number.toString(16)}`, false])
  expect(result.receipts.length).toBe(receipts.length)
  result.receipts.forEach((r, i) => {
    const want = receipts[i]!
    expect({ i, status: r.status, gasUsed: r.gasUsed, cumulative: r.cumulativeGasUsed }).toEqual({
      i,
      status: want.status === '0x1' ? 'success' : 'reverted',
      gasUsed: BigInt(want.gasUsed),
      cumulative: BigInt(want.cumulativeGasUsed),
    })
    expect(r.contractAddress?.toLowerCase() ?? null).toBe(want.contractAddress?.toLowerCase() ?? null)
    expect(r.logs.map((l) => ({ address: l.address.toLowerCase(), topics: l.topics, data: l.data }))).toEqual(
      want.logs.map((l) => ({ address: l.address.toLowerCase(), topics: l.topics, data: l.data })),
    )
  })
  expect(result.gasUsed).toBe(BigInt(header.gasUsed))
  expect(result.logsBloom).toBe(header.logsBloom)
  expect(result.receiptsRoot).toBe(header.receiptsRoot)
  expect(result.verification).toEqual({ gasUsed: true, receiptsRoot: true, logsBloom: true, requestsHash: null })
}

async function blockOf(number: bigint, url = anvil.url): Promise<RpcBlock> {
  return (await loadBlock({ rpcUrl: url, blockNumber: number, chainId: chain.chainId })).block
}

beforeAll(async () => {
  anvil = await startAnvil({ hardfork: 'cancun', chainId: 31337, accounts: 20 })
  proxy = await startFaultyProxy(anvil.url)
  cacheDir = mkdtempSync(join(tmpdir(), 'parallel-evm-cache-'))
  const [deployer, ...users] = anvil.accounts as [Address, ...Address[]]
  const token = erc20('cancun')
  const { factory, pair } = uniswapV2()
  const supply = 10n ** 30n
  tokenA = await anvil.deploy(deployer, token.abi, token.bytecode, ['Token A', 'A', supply])
  const tokenB = await anvil.deploy(deployer, token.abi, token.bytecode, ['Token B', 'B', supply])
  const factoryAddress = await anvil.deploy(deployer, factory.abi, factory.bytecode, [deployer])
  await anvil.call(deployer, factoryAddress, factory.abi, 'createPair', [tokenA, tokenB], 5_000_000n)
  await anvil.mine()
  const pairAddress = ((await anvil.client.readContract({ address: factoryAddress, abi: factory.abi, functionName: 'getPair', args: [tokenA, tokenB] })) as Address).toLowerCase() as Address
  const token0 = BigInt(tokenA) < BigInt(tokenB) ? tokenA : tokenB
  const liquidity = 10n ** 24n
  await anvil.call(deployer, tokenA, token.abi, 'transfer', [pairAddress, liquidity])
  await anvil.call(deployer, tokenB, token.abi, 'transfer', [pairAddress, liquidity])
  await anvil.call(deployer, pairAddress, pair.abi, 'mint', [deployer], 400_000n)
  for (const u of users) {
    await anvil.call(deployer, tokenA, token.abi, 'transfer', [u, 1000n * E18])
    await anvil.call(deployer, tokenB, token.abi, 'transfer', [u, 1000n * E18])
  }
  // Stores BLOCKHASH(number - 3) at slot 0. Init code: PUSH1 9, DUP1, PUSH1 11, PUSH1 0,
  // CODECOPY, PUSH1 0, RETURN; then the runtime: PUSH1 3, NUMBER, SUB, BLOCKHASH, PUSH1 0, SSTORE, STOP.
  const blockhashInit = ('0x' + '6009' + '80' + '600b' + '6000' + '39' + '6000' + 'f3' + '6003' + '43' + '03' + '40' + '6000' + '55' + '00') as Hex
  const blockhashUser = await anvil.send({ from: deployer, data: blockhashInit, gas: 200_000n })
  await anvil.mine()
  const blockhashContract = (await anvil.rpc<{ contractAddress: Address }>('eth_getTransactionReceipt', [blockhashUser])).contractAddress

  // Block 1: transfers, approvals, plain ETH payments (to fresh accounts too).
  for (const [i, u] of users.entries()) {
    const peer = users[(i + 1) % users.length]!
    await anvil.call(u, tokenA, token.abi, 'transfer', [peer, BigInt(i + 1) * E18])
    await anvil.call(u, tokenB, token.abi, 'approve', [peer, 50n * E18])
    await anvil.call(u, tokenA, token.abi, 'approve', [pairAddress, 10n ** 40n])
    await anvil.send({ from: u, to: getAddress(`0x${(0xf00d00 + i).toString(16).padStart(40, '0')}`), value: 1234n + BigInt(i), gas: 21_000n })
    await anvil.send({ from: u, to: peer, value: E18 / 100n, gas: 21_000n })
  }
  blocks.push(await anvil.mine())

  // Block 2: Uniswap swaps both ways through the pair, transferFrom with the approvals above,
  // a transfer beyond the balance (reverts) and a contract creation.
  // One sender's transactions are queued one after the other: anvil numbers them as they come.
  const swap = async (u: Address, inToken: Address, amountIn: bigint) => {
    const out = (amountIn * 99n) / 100n
    const outIsToken0 = inToken !== token0
    await anvil.call(u, inToken, token.abi, 'transfer', [pairAddress, amountIn])
    await anvil.call(u, pairAddress, pair.abi, 'swap', [outIsToken0 ? out : 0n, outIsToken0 ? 0n : out, u, '0x'], 250_000n)
  }
  for (const [i, u] of users.entries()) {
    const peer = users[(i + 1) % users.length]!
    await swap(u, i % 2 === 0 ? tokenA : tokenB, BigInt(i + 1) * E18)
    await anvil.call(peer, tokenB, token.abi, 'transferFrom', [u, peer, 3n * E18])
    await anvil.call(u, tokenA, token.abi, 'balanceOf', [u], 60_000n)
  }
  await anvil.call(users[0]!, tokenA, token.abi, 'transfer', [users[1]!, 10n ** 30n])
  await anvil.send({ from: users[2]!, data: encodeDeployData({ abi: token.abi, bytecode: token.bytecode, args: ['Token C', 'C', 1000n] }), gas: 3_000_000n })
  blocks.push(await anvil.mine())

  // Block 3: more swaps on the moved reserves, and transfers between the same accounts.
  for (const [i, u] of users.entries()) {
    await swap(u, i % 3 === 0 ? tokenB : tokenA, E18 / 2n)
    await anvil.call(u, tokenB, token.abi, 'transfer', [users[(i + 5) % users.length]!, E18])
  }
  await anvil.send({ from: users[3]!, to: blockhashContract, gas: 100_000n })
  blocks.push(await anvil.mine())
}, 120_000)

afterAll(async () => {
  await proxy?.stop()
  await anvil?.stop()
  if (cacheDir) rmSync(cacheDir, { recursive: true, force: true })
})

describe('anvil blocks through the RPC state adapters', () => {
  it('mined multi-transaction blocks with reverts and a contract creation', async () => {
    const receipts = await Promise.all(blocks.map((n) => anvil.rpc<RpcReceipt[]>('eth_getBlockReceipts', [`0x${n.toString(16)}`])))
    expect(receipts.map((r) => r.length).reduce((a, b) => a + b)).toBeGreaterThanOrEqual(200)
    const all = receipts.flat()
    expect(all.some((r) => r.status === '0x0')).toBe(true)
    expect(all.some((r) => r.contractAddress)).toBe(true)
    expect(all.filter((r) => r.logs.some((l) => l.topics[0] === '0xd78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822')).length).toBeGreaterThan(20) // Swap
  })

  it('prestate tracer adapter: every receipt and the header match', async () => {
    for (const n of blocks) {
      const result = await executeBlock({ block: await blockOf(n), state: rpcState({ rpcUrl: anvil.url, source: 'prestate', chainId: 31337 }), chain })
      await expectMatchesAnvil(result, n)
      expect(result.stateStats!.kind).toBe('rpc-prestate')
      expect(result.stateStats!.rpcCalls).toBeGreaterThanOrEqual(1)
    }
  })

  it('takes a viem PublicClient as well as a URL', async () => {
    const n = blocks[1]!
    const loaded = await loadBlock({ client: anvil.client, blockNumber: n })
    expect(loaded.chainId).toBe(31337)
    expect(loaded.number).toBe(n)
    const result = await executeBlock({ block: loaded.block, state: rpcState({ client: anvil.client, source: 'proofs' }), chain })
    await expectMatchesAnvil(result, n)
  })

  it('rejects a block that is not on the node, and bad arguments', async () => {
    await expect(loadBlock({ rpcUrl: anvil.url, blockNumber: 10_000_000n, chainId: 31337 })).rejects.toMatchObject({ code: 'INVALID_INPUT' })
    await expect(loadBlock({ rpcUrl: 'ftp://nowhere', blockNumber: 1n })).rejects.toMatchObject({ code: 'INVALID_INPUT' })
    expect(() => rpcState({ source: 'cache' })).toThrow(/needs a cache/)
    expect(() => rpcState({ rpcUrl: anvil.url, maxRounds: 0 })).toThrow(/maxRounds/)
  })

  it('gives up with StateError, not a result, when keys are still missing after maxRounds', async () => {
    const block = await blockOf(blocks[1]!)
    const e = await executeBlock({ block, state: rpcState({ rpcUrl: anvil.url, source: 'proofs', chainId: 31337, maxRounds: 1 }), chain }).catch((err: unknown) => err)
    expect(e).toBeInstanceOf(ParallelEvmError)
    expect((e as ParallelEvmError).code).toBe('STATE_ERROR')
    expect((e as ParallelEvmError).details).toMatch(/after 1 rounds/)
  })

  it('proofs adapter: rounds until nothing is missing; every receipt and the header match', async () => {
    for (const n of blocks) {
      const result = await executeBlock({ block: await blockOf(n), state: rpcState({ rpcUrl: anvil.url, source: 'proofs', chainId: 31337 }), chain, mode: 'parallel', threads: 2 })
      await expectMatchesAnvil(result, n)
      const rounds = result.stateStats!.rounds
      expect(rounds.length).toBeGreaterThanOrEqual(2) // the pair's calls into the tokens are found by executing
      expect(rounds.at(-1)).toMatchObject({ missingAccounts: 0, missingSlots: 0, missingBlockHashes: 0 })
      expect(rounds.slice(0, -1).every((r) => r.missingAccounts + r.missingSlots + r.missingBlockHashes > 0)).toBe(true)
    }
    // The last block calls BLOCKHASH: only that one hash was fetched.
    const last = await executeBlock({ block: await blockOf(blocks[2]!), state: rpcState({ rpcUrl: anvil.url, source: 'proofs', chainId: 31337 }), chain })
    expect(last.stateStats!.rounds.reduce((n, r) => n + r.missingBlockHashes, 0)).toBe(1)
  })

  it('cache: the second run of a block makes zero RPC calls (counted at the proxy)', async () => {
    const cache = new StateCache(cacheDir)
    try {
      for (const source of ['prestate', 'proofs'] as const) {
        for (const n of blocks) {
          const run = async () => {
            const { block } = await loadBlock({ rpcUrl: proxy.url, blockNumber: n, chainId: 31337, cache })
            return executeBlock({ block, state: rpcState({ rpcUrl: proxy.url, source, cache, chainId: 31337 }), chain })
          }
          const first = await run()
          await expectMatchesAnvil(first, n)
          proxy.reset()
          const second = await run()
          expect(proxy.rpcCalls).toBe(0)
          expect(second.stateStats!.rpcCalls).toBe(0)
          expect(second.stateStats!.cacheHits).toBeGreaterThan(0)
          await expectMatchesAnvil(second, n)
        }
      }
      // Offline: no node at all, the cache alone.
      const { block } = await loadBlock({ blockNumber: blocks[1]!, chainId: 31337, cache })
      const offline = await executeBlock({ block, state: rpcState({ source: 'cache', cache, chainId: 31337 }), chain })
      await expectMatchesAnvil(offline, blocks[1]!)
      expect(offline.stateStats!.kind).toBe('cache')
      // Keyed by chain id: another chain's block 2 is not this one.
      await expect(loadBlock({ blockNumber: blocks[1]!, chainId: 1, cache })).rejects.toMatchObject({ code: 'RPC_ERROR' })
      // Keyed by block: a block never run has no state in the cache.
      const { block: fresh } = await loadBlock({ rpcUrl: anvil.url, blockNumber: blocks[0]! - 1n, chainId: 31337 })
      await expect(executeBlock({ block: fresh, state: rpcState({ source: 'cache', cache, chainId: 31337 }), chain })).rejects.toMatchObject({ code: 'RPC_ERROR' })
    } finally {
      cache.close()
    }
  })
})

describe('faults between the adapter and the node', () => {
  const fast = { retryCount: 8, retryDelay: 5, timeout: 400 }

  it('retries through 429, 5xx, truncated JSON, dropped sockets and timeouts', async () => {
    proxy.reset()
    const n = blocks[1]!
    const block = await blockOf(n)
    proxy.schedule([
      { kind: 'status', status: 429 },
      { kind: 'status', status: 500 },
      { kind: 'truncate' },
      { kind: 'drop' },
      { kind: 'delay', ms: 1000 }, // beyond the 400 ms timeout
      { kind: 'status', status: 503 },
      { kind: 'delay', ms: 50 },
      { kind: 'status', status: 502 },
    ])
    const result = await executeBlock({ block, state: rpcState({ rpcUrl: proxy.url, source: 'proofs', chainId: 31337, rpcOptions: fast }), chain })
    expect(proxy.applied).toEqual(['status', 'status', 'truncate', 'drop', 'delay', 'status', 'delay', 'status'])
    await expectMatchesAnvil(result, n)
  })

  for (const [name, fault] of [
    ['HTTP 500', { kind: 'status', status: 500 }],
    ['HTTP 429', { kind: 'status', status: 429 }],
    ['truncated JSON', { kind: 'truncate' }],
    ['dropped sockets', { kind: 'drop' }],
  ] as const) {
    it(`fails with RpcError when every attempt meets ${name}`, async () => {
      proxy.reset()
      const block = await blockOf(blocks[0]!)
      proxy.always(fault)
      const e = await executeBlock({ block, state: rpcState({ rpcUrl: proxy.url, source: 'prestate', chainId: 31337, rpcOptions: { ...fast, retryCount: 2 } }), chain }).then(
        () => null,
        (err: unknown) => err,
      )
      proxy.always(null)
      expect(e).toBeInstanceOf(RpcError)
      expect(e).toBeInstanceOf(ParallelEvmError)
      expect((e as RpcError).code).toBe('RPC_ERROR')
      expect(proxy.httpRequests).toBe(3) // the first attempt and two retries
    })
  }

  it('loadBlock fails with RpcError when the node stays down', async () => {
    proxy.reset()
    proxy.always({ kind: 'status', status: 503 })
    await expect(loadBlock({ rpcUrl: proxy.url, blockNumber: blocks[0]!, chainId: 31337, rpcOptions: { ...fast, retryCount: 1 } })).rejects.toMatchObject({ code: 'RPC_ERROR' })
    proxy.always(null)
  })

  it('a proof for another block is an RpcResponseError, not a result', async () => {
    proxy.reset()
    const block = await blockOf(blocks[2]!)
    proxy.rewrite = (c) => {
      if (c.method === 'eth_getProof') c.params[2] = `0x${(blocks[0]! - 1n).toString(16)}`
    }
    const e = await executeBlock({ block, state: rpcState({ rpcUrl: proxy.url, source: 'proofs', chainId: 31337 }), chain }).catch((err: unknown) => err)
    proxy.rewrite = null
    expect(e).toBeInstanceOf(RpcResponseError)
    expect((e as RpcResponseError).code).toBe('RPC_INVALID_RESPONSE')
    expect((e as RpcResponseError).details).toMatch(/state root/)
  })

  it('a proof of another account is an RpcResponseError', async () => {
    proxy.reset()
    const block = await blockOf(blocks[0]!)
    proxy.rewrite = (c) => {
      if (c.method === 'eth_getProof') c.params[0] = tokenA
    }
    const e = await executeBlock({ block, state: rpcState({ rpcUrl: proxy.url, source: 'proofs', chainId: 31337 }), chain }).catch((err: unknown) => err)
    proxy.rewrite = null
    expect(e).toBeInstanceOf(RpcResponseError)
    expect((e as RpcResponseError).details).toMatch(/asked for 0x/)
  })

  it('a trace of another block is an RpcResponseError', async () => {
    proxy.reset()
    const block = await blockOf(blocks[0]!)
    proxy.rewrite = (c) => {
      if (c.method === 'debug_traceBlockByNumber') c.params[0] = `0x${blocks[1]!.toString(16)}`
    }
    const e = await executeBlock({ block, state: rpcState({ rpcUrl: proxy.url, source: 'prestate', chainId: 31337 }), chain }).catch((err: unknown) => err)
    proxy.rewrite = null
    expect(e).toBeInstanceOf(RpcResponseError)
  })
})

// Async spawn: the proxy answering the CLI lives in this process's event loop.
function cli(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('node', [join(repoRoot, 'dist', 'cli', 'main.js'), ...args])
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += String(d)))
    child.stderr.on('data', (d) => (stderr += String(d)))
    child.on('close', (status) => resolve({ status, stdout, stderr }))
  })
}

describe('cli run --rpc', () => {
  it('executes a range through each state source and verifies every block', async () => {
    const range = `${blocks[0]}..${blocks[2]}`
    for (const state of ['prestate', 'proofs']) {
      const r = await cli('run', '--rpc', anvil.url, range, '--state', state, '--hardfork', 'cancun', '--json', '--repeat', '1', '--threads', '2')
      expect(r.stderr).toBe('')
      expect(r.status).toBe(0)
      const lines = r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
      expect(lines.map((l) => BigInt(l.number))).toEqual(blocks)
      for (const l of lines) {
        expect(l.verified).toEqual({ gasUsed: true, receiptsRoot: true, logsBloom: true, requestsHash: null, matchesSequential: true })
        expect(l.state.kind).toBe(`rpc-${state}`)
      }
    }
  })

  it('with --cache, the second run makes no RPC call', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parallel-evm-cli-cache-'))
    try {
      const args = ['run', '--rpc', proxy.url, String(blocks[1]), '--state', 'proofs', '--cache', dir, '--hardfork', 'cancun', '--chain-id', '31337', '--repeat', '1']
      proxy.reset()
      const first = await cli(...args)
      expect(first.status).toBe(0)
      expect(proxy.rpcCalls).toBeGreaterThan(0)
      proxy.reset()
      const second = await cli(...args)
      expect(second.status).toBe(0)
      expect(proxy.rpcCalls).toBe(0)
      expect(second.stdout).toMatch(/0 RPC calls/)
      expect(second.stdout).toMatch(/receiptsRoot ok logsBloom ok; matches sequential ok/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('rejects a chain without --hardfork, and a bad block spec, with exit code 2', async () => {
    const noFork = await cli('run', '--rpc', anvil.url, String(blocks[0]))
    expect(noFork.status).toBe(2)
    expect(noFork.stderr).toMatch(/--hardfork/)
    const bad = await cli('run', '--rpc', anvil.url, '5..2', '--hardfork', 'cancun')
    expect(bad.status).toBe(2)
  })

  it('reports a node that stays down as RPC_ERROR with exit code 1', async () => {
    proxy.reset()
    proxy.always({ kind: 'status', status: 500 })
    const r = await cli('run', '--rpc', proxy.url, String(blocks[0]), '--hardfork', 'cancun', '--chain-id', '31337', '--json')
    proxy.always(null)
    expect(r.status).toBe(1)
    expect(JSON.parse(r.stdout.trim())).toMatchObject({ code: 'RPC_ERROR' })
  })
})
