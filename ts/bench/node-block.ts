// A block mined on a node and its pre-state, fetched once and parsed, so that benchmarks and
// tests time and compare execution alone, with no RPC in the timed runs. The pre-state is the
// `rpcState` prestate path (the prestateTracer, then whatever a sequential run still misses),
// handed over as a complete state: keys the node was not asked for read as absent. A partial
// state would not do: Block-STM's speculative runs can read keys the block's real execution never
// reads, and a partial state reports those as missing; read as absent, they only feed runs
// that validation throws away, and every result is checked against the header.
import type { Hash } from 'viem'
import { prepareBlock, type ChainConfig, type PreparedBlock, type RpcBlock } from '../block.js'
import { executeNativeRun } from '../execute.js'
import { loadBlock, withHeaders } from '../rpc/block.js'
import { Rpc } from '../rpc/client.js'
import { KnownState } from '../rpc/known.js'
import { RpcStateAdapter, Session } from '../rpc/state.js'
import { prepareState, type PreparedState, type Prestate, type StateAdapter, type StateLoadStats } from '../state.js'

export type LoadNodeBlockParameters = { rpcUrl: string; blockNumber: bigint; chain: ChainConfig & { chainId: number } }

export type LoadNodeBlockReturnType = {
  rpcBlock: RpcBlock
  block: PreparedBlock
  /** The pre-state as a prestateTracer-style object (what a fixture folder's prestate.json holds). */
  prestate: Prestate
  state: PreparedState
  stateStats: StateLoadStats
}

/** Loads block `blockNumber` and its complete pre-state from the node at `rpcUrl`. */
export async function loadNodeBlock(params: LoadNodeBlockParameters): Promise<LoadNodeBlockReturnType> {
  const { chainId } = params.chain
  const rpc = new Rpc({ rpcUrl: params.rpcUrl })
  const { block } = await loadBlock({ rpc, blockNumber: params.blockNumber, chainId })
  const known = new KnownState()
  const started = performance.now()
  // The rpcState adapter's session, over a KnownState kept here to hand over whole afterwards.
  const adapter: StateAdapter = {
    kind: 'rpc-prestate',
    async load() {
      const session = new Session(new RpcStateAdapter({ rpc, chainId }), withHeaders(rpc, undefined, chainId, block), chainId, block.parentHash.toLowerCase() as Hash, params.blockNumber - 1n, known)
      await session.seedFromTrace()
      const loadMs = performance.now() - started
      return {
        partial: await known.prepare(),
        maxRounds: 16,
        fetchMissing: async (missing) => {
          await session.fetch(missing)
          return known.prepare()
        },
        stats: () => ({ kind: 'rpc-prestate', rpcCalls: rpc.calls, cacheHits: 0, loadMs }),
      }
    },
  }
  const run = await executeNativeRun({ block, state: adapter, chain: params.chain, threads: 1, mode: 'sequential' })
  const { prestate, blockHashes } = known.toJson()
  return {
    rpcBlock: block,
    block: await prepareBlock(block, { chain: params.chain }),
    prestate: JSON.parse(prestate.toString('utf8')) as Prestate,
    state: await prepareState(prestate, { blockHashes }),
    stateStats: run.stateStats!,
  }
}
