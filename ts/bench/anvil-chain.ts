// A chain of mixed blocks mined on a dev node (anvil) through its unlocked accounts, for the range
// replay tests and benchmark: ETH transfers (to known and fresh accounts), ERC-20 transfers,
// approvals and transferFroms, Uniswap V2 swaps, transactions that revert, contract creations
// and BLOCKHASH reads, in a different order in every block (seeded).
import { encodeDeployData, encodeFunctionData, type Abi, type Address, type Hash, type Hex } from 'viem'
import { compileContract } from './solidity.js'
import { requireOptional } from './optional.js'

export const CHAIN_TOKEN_SOURCE = `// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

contract ChainToken is ERC20 {
    constructor(uint256 supply) ERC20("Chain Token", "CT") {
        _mint(msg.sender, supply);
    }
}
`

// Stores BLOCKHASH(number - 3) at slot 0. Init code: PUSH1 9, DUP1, PUSH1 11, PUSH1 0, CODECOPY,
// PUSH1 0, RETURN; runtime: PUSH1 3, NUMBER, SUB, BLOCKHASH, PUSH1 0, SSTORE, STOP.
const BLOCKHASH_INIT = '0x600980600b6000396000f3' as Hex
const BLOCKHASH_RUNTIME = '6003430340600055' + '00'

export type MineChainParameters = {
  rpcUrl: string
  /** Blocks of mixed work to mine (after a few setup blocks). */
  blocks: number
  /** Transactions per block (about; swaps take two). Default 12. */
  txsPerBlock?: number
  seed?: number
  /** Called after each mixed block with its number. */
  onBlock?: (number: bigint) => void
}

export type MinedChain = {
  /** First and last block of the mixed part; setup blocks come before `first`. */
  first: bigint
  last: bigint
  tokens: Address[]
  pair: Address
  transactions: number
}

type Artifact = { abi: Abi; bytecode: Hex }

/** mulberry32: a small seeded generator, so that every run mines the same kinds of blocks. */
export function seededRandom(seed: number) {
  let s = seed >>> 0
  const random = () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return { random, pick: <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]! }
}

/** Mines the chain; the node must have unlocked, funded dev accounts (anvil's). */
export async function mineChain(params: MineChainParameters): Promise<MinedChain> {
  const url = params.rpcUrl
  let id = 0
  const rpc = async <T>(method: string, args: unknown[] = []): Promise<T> => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: ++id, method, params: args }) })
    const body = (await res.json()) as { result?: T; error?: { message: string } }
    if (body.error) throw new Error(`${method}: ${body.error.message}`)
    return body.result as T
  }
  const hex = (n: bigint) => `0x${n.toString(16)}`
  // Transactions are queued with explicit nonces and sent as one JSON-RPC batch per block: one
  // request at a time took ~20 ms per transaction.
  const nonces = new Map<Address, bigint>()
  let queued: { from: Address; to?: Address; data: Hex; value: string; gas: string; nonce: string }[] = []
  const send = async (from: Address, to: Address | undefined, data: Hex = '0x', value = 0n, gas = 300_000n): Promise<number> => {
    if (!nonces.has(from)) nonces.set(from, BigInt(await rpc<Hex>('eth_getTransactionCount', [from, 'pending'])))
    const nonce = nonces.get(from)!
    nonces.set(from, nonce + 1n)
    queued.push({ from, ...(to ? { to } : {}), data, value: hex(value), gas: hex(gas), nonce: hex(nonce) })
    return queued.length - 1
  }
  const flush = async (): Promise<Hash[]> => {
    if (queued.length === 0) return []
    const batch = queued.map((tx, i) => ({ jsonrpc: '2.0', id: i, method: 'eth_sendTransaction', params: [tx] }))
    queued = []
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(batch) })
    const answers = (await res.json()) as { id: number; result?: Hash; error?: { message: string } }[]
    const failed = answers.find((a) => a.error)
    if (failed) throw new Error(`eth_sendTransaction: ${failed.error!.message}`)
    return answers.sort((a, b) => a.id - b.id).map((a) => a.result!)
  }
  const mine = async () => {
    await flush()
    await rpc('evm_mine')
    return BigInt(await rpc<Hex>('eth_blockNumber'))
  }
  const call = (from: Address, to: Address, abi: Abi, functionName: string, args: readonly unknown[], gas?: bigint) => send(from, to, encodeFunctionData({ abi, functionName, args } as never), 0n, gas)
  const deploy = async (from: Address, data: Hex) => {
    await mine()
    await send(from, undefined, data, 0n, 6_000_000n)
    const [hash] = await flush()
    await mine()
    const r = await rpc<{ status: Hex; contractAddress: Address }>('eth_getTransactionReceipt', [hash])
    if (r.status !== '0x1') throw new Error('deployment reverted')
    return r.contractAddress.toLowerCase() as Address
  }

  await rpc('evm_setAutomine', [false])
  const accounts = (await rpc<Address[]>('eth_accounts')).map((a) => a.toLowerCase() as Address)
  if (accounts.length < 4) throw new Error('the node needs at least 4 unlocked accounts')
  const [deployer, ...users] = accounts as [Address, ...Address[]]
  const token = compileContract('ChainToken.sol', CHAIN_TOKEN_SOURCE, 'ChainToken')
  const uni = (name: string): Artifact => {
    const a = requireOptional<{ abi: Abi; bytecode: string }>(`@uniswap/v2-core/build/${name}.json`, 'The replay chain', '@uniswap/v2-core')
    return { abi: a.abi, bytecode: (a.bytecode.startsWith('0x') ? a.bytecode : `0x${a.bytecode}`) as Hex }
  }
  const factory = uni('UniswapV2Factory')
  const pairArtifact = uni('UniswapV2Pair')
  const E18 = 10n ** 18n
  const supply = 10n ** 30n
  const tokenA = await deploy(deployer, encodeDeployData({ abi: token.abi, bytecode: token.bytecode, args: [supply] }))
  const tokenB = await deploy(deployer, encodeDeployData({ abi: token.abi, bytecode: token.bytecode, args: [supply] }))
  const factoryAddress = await deploy(deployer, encodeDeployData({ abi: factory.abi, bytecode: factory.bytecode, args: [deployer] }))
  await call(deployer, factoryAddress, factory.abi, 'createPair', [tokenA, tokenB], 5_000_000n)
  await mine()
  const pairData = await rpc<Hex>('eth_call', [{ to: factoryAddress, data: encodeFunctionData({ abi: factory.abi, functionName: 'getPair', args: [tokenA, tokenB] }) }, 'latest'])
  const pair = `0x${pairData.slice(26)}`.toLowerCase() as Address
  const token0 = BigInt(tokenA) < BigInt(tokenB) ? tokenA : tokenB
  await call(deployer, tokenA, token.abi, 'transfer', [pair, 10n ** 24n])
  await call(deployer, tokenB, token.abi, 'transfer', [pair, 10n ** 24n])
  await call(deployer, pair, pairArtifact.abi, 'mint', [deployer], 400_000n)
  for (const u of users) {
    await call(deployer, tokenA, token.abi, 'transfer', [u, 10_000n * E18])
    await call(deployer, tokenB, token.abi, 'transfer', [u, 10_000n * E18])
  }
  await mine()
  const blockhashContract = await deploy(deployer, (BLOCKHASH_INIT + BLOCKHASH_RUNTIME) as Hex)

  const { random, pick } = seededRandom(params.seed ?? 1)
  let fresh = 0
  const freshAddress = () => `0x${(0xf00d000000 + fresh++).toString(16).padStart(40, '0')}` as Address
  const txsPerBlock = params.txsPerBlock ?? 12
  let transactions = 0
  let first: bigint | undefined
  let last = 0n
  for (let b = 0; b < params.blocks; b++) {
    let sent = 0
    while (sent < txsPerBlock) {
      const u = pick(users)
      const peer = pick(users.filter((x) => x !== u))
      const kind = Math.floor(random() * 8)
      if (kind === 0) await send(u, peer, '0x', E18 / 100n + BigInt(b), 21_000n)
      else if (kind === 1) await send(u, freshAddress(), '0x', 1234n + BigInt(b), 21_000n)
      else if (kind === 2) await call(u, pick([tokenA, tokenB]), token.abi, 'transfer', [peer, E18 + BigInt(b)], 80_000n)
      else if (kind === 3) await call(u, pick([tokenA, tokenB]), token.abi, 'transfer', [freshAddress(), E18 / 2n], 80_000n)
      else if (kind === 4) {
        // The router's transfer-then-swap, as two transactions of one sender.
        const inToken = pick([tokenA, tokenB])
        const amountIn = E18 / 10n + BigInt(b)
        const out = (amountIn * 99n) / 100n
        const outIsToken0 = inToken !== token0
        await call(u, inToken, token.abi, 'transfer', [pair, amountIn], 80_000n)
        await call(u, pair, pairArtifact.abi, 'swap', [outIsToken0 ? out : 0n, outIsToken0 ? 0n : out, u, '0x'], 250_000n)
        sent++
      } else if (kind === 5) {
        await call(u, tokenB, token.abi, 'approve', [peer, 5n * E18], 80_000n)
        await call(peer, tokenB, token.abi, 'transferFrom', [u, peer, E18], 100_000n)
        sent++
      } else if (kind === 6) {
        // More than the sender holds: reverts, and still pays for its gas.
        await call(u, tokenA, token.abi, 'transfer', [peer, supply], 80_000n)
      } else {
        await send(u, blockhashContract, '0x', 0n, 100_000n)
      }
      sent++
    }
    if (b % 10 === 3) {
      // A creation: a new token, or the small BLOCKHASH contract.
      const data = b % 20 === 3 ? encodeDeployData({ abi: token.abi, bytecode: token.bytecode, args: [1000n * E18] }) : ((BLOCKHASH_INIT + BLOCKHASH_RUNTIME) as Hex)
      await send(pick(users), undefined, data, 0n, 3_000_000n)
      sent++
    }
    transactions += sent
    last = await mine()
    first ??= last
    params.onBlock?.(last)
  }
  return { first: first ?? last, last, tokens: [tokenA, tokenB], pair, transactions }
}
