// ERC20 workloads on OpenZeppelin's ERC20, compiled with solc: balances are written straight into
// the pre-state (slot from solc's storage layout), so a block of n transfers needs no setup block.
import { encodeAbiParameters, encodeFunctionData, hexToBigInt, keccak256, numberToHex, toHex, type Address, type Hex } from 'viem'
import { addressAt, assembleBlock, ether, GENERATED_CHAIN, keyAt, signTransactions, type GeneratedBlock, type TxRequest } from '../generate.js'
import type { Prestate } from '../state.js'
import { sealBlock } from './seal.js'
import { compileContract, slotOf, type CompiledContract } from './solidity.js'

/** The bench token: OpenZeppelin's ERC20 as is (name and symbol stay empty: no constructor runs). */
export const BENCH_TOKEN_SOURCE = `// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

contract BenchToken is ERC20 {
    constructor() ERC20("Bench Token", "BENCH") {}
}
`

export function benchToken(): CompiledContract {
  return compileContract('BenchToken.sol', BENCH_TOKEN_SOURCE, 'BenchToken')
}

/** Storage key of `mapping(address => uint256)` entry `holder` at slot `slot`. */
export function mappingSlot(holder: Address, slot: bigint): Hex {
  return keccak256(encodeAbiParameters([{ type: 'address' }, { type: 'uint256' }], [holder, slot]))
}

/** A token in a pre-state: its runtime code, holders' balances and the total supply. */
export class TokenState {
  readonly address: Address
  private readonly storage: Record<Hex, Hex> = {}
  private total = 0n
  constructor(
    readonly contract: CompiledContract,
    label: string,
  ) {
    this.address = addressAt(`${label} token`, 0)
  }
  credit(holder: Address, amount: bigint) {
    this.storage[mappingSlot(holder, slotOf(this.contract, '_balances'))] = numberToHex(amount, { size: 32 })
    this.total += amount
  }
  writeTo(prestate: Prestate) {
    const supplySlot = numberToHex(slotOf(this.contract, '_totalSupply'), { size: 32 })
    prestate[this.address] = { balance: '0x0', nonce: 1, code: this.contract.deployedBytecode, storage: { ...this.storage, [supplySlot]: numberToHex(this.total, { size: 32 }) } }
  }
  transfer(to: Address, amount: bigint): Hex {
    return encodeFunctionData({ abi: this.contract.abi, functionName: 'transfer', args: [to, amount] })
  }
}

const TOKEN_GAS = 100_000n
const HOLDING = 10n ** 24n

/**
 * `txs` ERC20 transfers from distinct holders to distinct fresh receivers (no conflicts), or with
 * `hot`, all to one receiver (an exchange's deposit address): every transfer adds to one slot.
 */
export async function erc20Block(txs: number, seed: number, hot = false): Promise<GeneratedBlock> {
  const label = hot ? `erc20-hot#${seed}` : `erc20#${seed}`
  const token = new TokenState(benchToken(), label)
  const prestate: Prestate = {}
  const requests: TxRequest[] = []
  for (let i = 0; i < txs; i++) {
    const from = keyAt(label, i)
    prestate[from.address] = { balance: ether(1n), nonce: 0, storage: {} }
    token.credit(from.address, HOLDING)
    requests.push({ from, nonce: 0, to: token.address, data: token.transfer(addressAt(label, hot ? 0 : i), 1_000n + BigInt(i)), gas: TOKEN_GAS })
  }
  token.writeTo(prestate)
  const g: GeneratedBlock = {
    name: hot ? `erc20 ×${txs} to one receiver` : `erc20 ×${txs}`,
    block: assembleBlock({ id: `${label} ${txs}`, transactions: await signTransactions(requests) }),
    prestate,
    chain: { ...GENERATED_CHAIN },
  }
  await sealBlock(g)
  return g
}

export const HOT_ACCOUNTS = 4

/**
 * A contended block: a quarter each of ETH transfers to a few hot accounts, token transfers to
 * them, token transfers from them (each hot account's transactions form a nonce chain), and
 * independent token transfers.
 */
export async function mixedBlock(txs: number, seed: number): Promise<GeneratedBlock> {
  const label = `mixed#${seed}`
  const token = new TokenState(benchToken(), label)
  const prestate: Prestate = {}
  const hot = Array.from({ length: HOT_ACCOUNTS }, (_, j) => keyAt(`${label} hot`, j))
  const hotNonce = hot.map(() => 0)
  for (const h of hot) {
    prestate[h.address] = { balance: ether(100n), nonce: 0, storage: {} }
    token.credit(h.address, HOLDING)
  }
  const requests: TxRequest[] = []
  for (let i = 0; i < txs; i++) {
    // Which hot account: deterministic from the seed.
    const j = Number(hexToBigInt(keccak256(toHex(`${label} hot pick ${i}`))) % BigInt(HOT_ACCOUNTS))
    const amount = 1_000n + BigInt(i)
    const kind = i % 4
    if (kind === 2) {
      requests.push({ from: hot[j]!, nonce: hotNonce[j]!++, to: token.address, data: token.transfer(addressAt(label, i), amount), gas: TOKEN_GAS })
      continue
    }
    const from = keyAt(label, i)
    prestate[from.address] = { balance: ether(1n), nonce: 0, storage: {} }
    if (kind === 0) {
      requests.push({ from, nonce: 0, to: hot[j]!.address, value: amount, gas: 21_000n })
    } else {
      token.credit(from.address, HOLDING)
      const to = kind === 1 ? hot[j]!.address : addressAt(label, i)
      requests.push({ from, nonce: 0, to: token.address, data: token.transfer(to, amount), gas: TOKEN_GAS })
    }
  }
  token.writeTo(prestate)
  const g: GeneratedBlock = {
    name: `mixed ×${txs} (${HOT_ACCOUNTS} hot)`,
    block: assembleBlock({ id: `${label} ${txs}`, transactions: await signTransactions(requests) }),
    prestate,
    chain: { ...GENERATED_CHAIN },
  }
  await sealBlock(g)
  return g
}
