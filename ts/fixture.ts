// Fixture folders: block.json, prestate.json, optional chain.json, block_hashes.json in the
// folder or its parent (the layout of shared/fixtures/mainnet), and witness.json where the block
// comes with its execution witness (shared/fixtures/mainnet-witness).
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Hash } from 'viem'
import { prepareBlock, type ChainConfig, type PreparedBlock, type RpcBlock } from './block.js'
import { InvalidInputError } from './errors.js'
import { prepareState, witnessState, type ExecutionWitness, type Prestate, type PreparedState } from './state.js'

export type FixtureFiles = {
  dir: string
  block: string
  prestate: string
  blockHashes?: string
  chain?: string
  /** `witness.json` (debug_executionWitness), when present and no other pre-state was named. */
  witness?: string
}

/** Where a fixture's files are. `block` may be a folder or a `block.json` path. */
export function fixtureFiles(block: string, options: { prestate?: string } = {}): FixtureFiles {
  const isDir = existsSync(join(block, 'block.json'))
  const dir = isDir ? block : dirname(block)
  const files: FixtureFiles = {
    dir,
    block: isDir ? join(block, 'block.json') : block,
    prestate: options.prestate ?? join(dir, 'prestate.json'),
  }
  if (!existsSync(files.block)) throw new InvalidInputError(`no block.json at ${block}`)
  if (options.prestate === undefined && existsSync(join(dir, 'witness.json'))) files.witness = join(dir, 'witness.json')
  if (!files.witness && !existsSync(files.prestate)) throw new InvalidInputError(`no pre-state at ${files.prestate} (pass one with --prestate)`)
  files.blockHashes = [join(dir, 'block_hashes.json'), join(dir, '..', 'block_hashes.json')].find((p) => existsSync(p))
  if (existsSync(join(dir, 'chain.json'))) files.chain = join(dir, 'chain.json')
  return files
}

async function readJson<T>(path: string): Promise<T> {
  const text = await readFile(path, 'utf8')
  try {
    return JSON.parse(text) as T
  } catch (e) {
    throw new InvalidInputError(`${path}: ${(e as Error).message}`, { cause: e })
  }
}

export type Fixture = {
  dir: string
  block: RpcBlock
  prestate: Prestate
  blockHashes?: Record<string, Hash>
  chain?: ChainConfig
  /** The execution witness (`witness.json`), when the folder has one: pass it to `witnessState`. */
  witness?: ExecutionWitness
}

/** Reads a fixture folder into plain objects (pass `block`, `prestate` as `state`, ... to executeBlock). */
export async function loadFixture(dir: string): Promise<Fixture> {
  const f = fixtureFiles(dir)
  return {
    dir: f.dir,
    block: await readJson<RpcBlock>(f.block),
    prestate: await readJson<Prestate>(f.prestate),
    blockHashes: f.blockHashes ? await readJson<Record<string, Hash>>(f.blockHashes) : undefined,
    chain: f.chain ? await readJson<ChainConfig>(f.chain) : undefined,
    witness: f.witness ? await readJson<ExecutionWitness>(f.witness) : undefined,
  }
}

export type PreparedFixture = { dir: string; block: PreparedBlock; state: PreparedState }

/**
 * Reads a fixture's files straight into the engine's parsers (no JS parsing): the fast path. A
 * folder with a `witness.json` (and no `prestate` named) runs on its witness, and its results
 * check their post-state root. `checkHeader` checks the block against its own header.
 */
export async function prepareFixture(block: string, options: { prestate?: string; checkHeader?: boolean } = {}): Promise<PreparedFixture> {
  const f = fixtureFiles(block, options)
  const [blockBytes, stateBytes, hashes, chain] = await Promise.all([
    readFile(f.block),
    readFile(f.witness ?? f.prestate),
    f.blockHashes ? readFile(f.blockHashes) : undefined,
    f.chain ? readJson<ChainConfig>(f.chain) : undefined,
  ])
  const [preparedBlock, state] = await Promise.all([
    prepareBlock(blockBytes, { chain, checkHeader: options.checkHeader }),
    f.witness ? witnessState(stateBytes, { blockHashes: hashes }) : prepareState(stateBytes, { blockHashes: hashes }),
  ])
  return { dir: f.dir, block: preparedBlock, state }
}
