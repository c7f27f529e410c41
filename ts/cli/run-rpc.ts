// `parallel-evm run --rpc <url> <block>`: loads blocks and their pre-state from a node (or the
// cache), executes them, and checks them against their headers and sequential execution.
import cliProgress from 'cli-progress'
import { prepareBlock, type ChainConfig } from '../block.js'
import { executeNativeRun, type ExecutionMode } from '../execute.js'
import { loadBlock } from '../rpc/block.js'
import { StateCache } from '../rpc/cache.js'
import { Rpc } from '../rpc/client.js'
import { rpcState, type StateSourceKind } from '../rpc/state.js'
import type { StateLoadStats } from '../state.js'
import { headerPassed } from '../result.js'
import { check, fmtGas, headerLine, UsageError } from './format.js'
import { measureBlock } from './run.js'
import { round3 } from './timing.js'

export type RpcRunOptions = {
  rpc: string
  state: StateSourceKind
  cache?: string
  hardfork?: string
  chainId?: number
  threads: number
  mode: ExecutionMode
  json: boolean
  repeat: number
  minTime?: number
}

type BlockSpec = { latest: true } | { from: bigint; to: bigint }

/** `latest`, `123` or `100..120` (inclusive). */
export function parseBlockSpec(spec: string): BlockSpec {
  if (spec === 'latest') return { latest: true }
  const range = /^(\d+)\.\.(\d+)$/.exec(spec)
  if (range) {
    const [from, to] = [BigInt(range[1]!), BigInt(range[2]!)]
    if (to < from) throw new UsageError(`empty range ${spec}`)
    return { from, to }
  }
  if (/^\d+$/.test(spec)) return { from: BigInt(spec), to: BigInt(spec) }
  throw new UsageError(`expected a block number, 'latest' or a range a..b, got '${spec}'`)
}

export async function runRpcCommand(spec: string, options: RpcRunOptions): Promise<number> {
  const blocks = parseBlockSpec(spec)
  const rpc = new Rpc({ rpcUrl: options.rpc })
  const chainId = options.chainId ?? (await rpc.chainId())
  if (chainId !== 1 && !options.hardfork) {
    throw new UsageError(`chain ${chainId} is not Ethereum mainnet: name its hardfork with --hardfork (e.g. cancun)`)
  }
  const chain: ChainConfig = { chainId, ...(options.hardfork ? { hardfork: options.hardfork } : {}) }
  const cache = options.cache ? new StateCache(options.cache) : undefined
  const adapter = rpcState({ rpc, source: options.state, cache, chainId })
  const numbers: (bigint | 'latest')[] = []
  if ('latest' in blocks) numbers.push('latest')
  else for (let n = blocks.from; n <= blocks.to; n++) numbers.push(n)

  const bar =
    !options.json && process.stderr.isTTY
      ? new cliProgress.SingleBar({ format: '{phase} {bar} {value}/{total} blocks | block {block}', clearOnComplete: true }, cliProgress.Presets.shades_classic)
      : undefined
  bar?.start(numbers.length, 0, { phase: 'fetching ', block: '' })
  let done = 0
  // The bar is cleared while a block's lines print, then drawn again below them.
  const emit = (text: string, stream: 'out' | 'err') => {
    bar?.stop()
    if (stream === 'out') console.log(text)
    else console.error(text)
    bar?.start(numbers.length, done, { phase: 'fetching ', block: '' })
  }
  let failed = 0
  try {
    for (const n of numbers) {
      bar?.update({ phase: 'fetching ', block: String(n) })
      try {
        const { block } = await loadBlock({ rpc, blockNumber: n, cache, chainId })
        // The adapter's rounds fetch state and execute in turn; then the timed runs execute only.
        const run = await executeNativeRun({ block, state: adapter, chain, threads: options.threads, mode: options.mode })
        bar?.update({ phase: 'executing', block: String(BigInt(block.number)) })
        const prepared = await prepareBlock(block, { chain })
        const line = {
          ...(await measureBlock(prepared, run.state, options)),
          state: summarizeState(run.stateStats!),
        }
        const v = line.verified
        if (!(headerPassed(v) && v.matchesSequential)) failed++
        const text = options.json
          ? JSON.stringify(line)
          : `block ${line.number}: ${line.txs} txs, ${fmtGas(line.gasUsed)} gas, ${line.mode} on ${line.threads} thread${line.threads === 1 ? '' : 's'}${line.reason ? ` (${line.reason})` : ''}\n` +
            `  state: ${line.state.kind}, ${line.state.rounds} round${line.state.rounds === 1 ? '' : 's'}, ${line.state.rpcCalls} RPC calls, ${line.state.cacheHits} cache hits, loaded in ${line.state.loadMs.toFixed(0)} ms\n` +
            `  time ${line.parMs.toFixed(2)} ms vs sequential ${line.seqMs.toFixed(2)} ms: ${line.speedup.toFixed(2)}x, ${line.reexecutions} re-executions\n` +
            `  header: ${headerLine(v)}; matches sequential ${check(v.matchesSequential)}`
        done++
        emit(text, 'out')
      } catch (e) {
        failed++
        if (e instanceof UsageError) throw e
        const err = e as { code?: string; message: string; details?: string; shortMessage?: string }
        const detail = err.shortMessage && err.details ? `${err.shortMessage} ${err.details}` : err.details || err.message
        done++
        if (options.json) emit(JSON.stringify({ block: String(n), error: detail, code: err.code ?? 'INTERNAL_ERROR' }), 'out')
        else emit(`block ${n}: ${err.code ?? 'ERROR'}: ${detail}`, 'err')
      }
    }
  } finally {
    bar?.stop()
    cache?.close()
  }
  if (!options.json && numbers.length > 1) console.log(`${numbers.length - failed}/${numbers.length} blocks verified`)
  return failed === 0 ? 0 : 1
}

function summarizeState(s: StateLoadStats) {
  return { kind: s.kind, rounds: s.rounds.length, rpcCalls: s.rpcCalls, cacheHits: s.cacheHits, loadMs: round3(s.loadMs) }
}
