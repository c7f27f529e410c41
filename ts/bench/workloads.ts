// The generated ("gigagas"-style) workloads of the bench, by name: deterministic from a seed.
// Signing thousands of transactions in JavaScript takes seconds, so the bench caches built blocks
// beside the compiled contracts, keyed by the generator's own code, the workload, size and seed.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { keccak256, toHex } from 'viem'
import { generateBlock, type GeneratedBlock } from '../generate.js'
import { cacheDir } from './solidity.js'
import { erc20Block, mixedBlock } from './erc20.js'
import { sealBlock } from './seal.js'
import { uniswapBlocks } from './uniswap.js'

export const WORKLOADS = ['independent', 'hot-receiver', 'chain', 'erc20', 'erc20-hot', 'uniswap', 'mixed'] as const
export type BenchWorkload = (typeof WORKLOADS)[number]

export const WORKLOAD_DESCRIPTIONS: Record<BenchWorkload, string> = {
  independent: 'ETH transfers between distinct fresh accounts (no conflicts)',
  'hot-receiver': 'ETH transfers from distinct senders to one receiver',
  chain: 'ETH transfers where each receiver sends the next one (one dependency chain)',
  erc20: 'OpenZeppelin ERC20 transfers between distinct holders (no conflicts)',
  'erc20-hot': 'OpenZeppelin ERC20 transfers from distinct holders to one receiver (one hot balance slot)',
  uniswap: 'Uniswap V2 swaps, one per pair (no conflicts)',
  mixed: `ETH and ERC20 transfers to and from a few hot accounts (contended)`,
}

/** Builds workload `name` with `txs` transactions, sealed (header from a sequential run, see seal.ts). */
export async function buildWorkload(name: BenchWorkload, txs: number, seed: number): Promise<GeneratedBlock> {
  switch (name) {
    case 'independent':
    case 'hot-receiver':
    case 'chain': {
      const g = await generateBlock(name, txs, seed)
      await sealBlock(g)
      return g
    }
    case 'erc20':
      return erc20Block(txs, seed)
    case 'erc20-hot':
      return erc20Block(txs, seed, true)
    case 'uniswap':
      return (await uniswapBlocks(txs, seed)).bench
    case 'mixed':
      return mixedBlock(txs, seed)
  }
}

// The modules whose code decides what a workload's block is.
const GENERATOR_MODULES = ['../generate.js', './erc20.js', './uniswap.js', './seal.js', './solidity.js', './workloads.js']

/** `buildWorkload`, through the cache (rebuilt whenever the generator's code changes). */
export async function cachedWorkload(name: BenchWorkload, txs: number, seed: number): Promise<GeneratedBlock> {
  const code = GENERATOR_MODULES.map((m) => readFileSync(require.resolve(m), 'utf8')).join('\n')
  const key = keccak256(toHex(`${code}\n${name} ${txs} ${seed}`)).slice(2, 18)
  const path = join(cacheDir(), `block-${name}-${txs}-${seed}-${key}.json`)
  if (existsSync(path)) return JSON.parse(readFileSync(path, 'utf8')) as GeneratedBlock
  const g = await buildWorkload(name, txs, seed)
  mkdirSync(cacheDir(), { recursive: true })
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(g))
  renameSync(tmp, path)
  return g
}
