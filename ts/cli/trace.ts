// `parallel-evm trace`: executes blocks (fixture folders, a block.json, or blocks from a node) and
// prints every transaction's trace, one JSON line per block `{ number, traces }`, exactly as a
// geth/reth node answers debug_traceBlockByNumber. With --compare-rpc, the node's own answer for
// the same config is fetched and the first difference reported.
import { createWriteStream, type WriteStream } from 'node:fs'
import type { ChainConfig } from '../block.js'
import { executeBlock, type ExecutionMode } from '../execute.js'
import { prepareFixture } from '../fixture.js'
import { loadBlock } from '../rpc/block.js'
import { Rpc } from '../rpc/client.js'
import { rpcState } from '../rpc/state.js'
import type { TraceConfig, TracerName } from '../trace.js'
import { UsageError } from './format.js'
import { parseBlockSpec } from './run-rpc.js'
import { blockPaths } from './run.js'

export type TraceOptions = {
  rpc?: string
  tracer: TracerName
  diffMode: boolean
  onlyTopCall: boolean
  withLog: boolean
  threads: number
  mode: ExecutionMode
  out?: string
  compareRpc: boolean
  hardfork?: string
  chainId?: number
}

/** The geth config the flags describe. */
export function traceConfigOf(o: Pick<TraceOptions, 'tracer' | 'diffMode' | 'onlyTopCall' | 'withLog'>): TraceConfig {
  if (o.diffMode && o.tracer !== 'prestateTracer') throw new UsageError('--diff-mode needs --tracer prestateTracer')
  if ((o.onlyTopCall || o.withLog) && o.tracer !== 'callTracer') throw new UsageError('--only-top-call and --with-log need --tracer callTracer')
  switch (o.tracer) {
    case 'callTracer':
      return { tracer: 'callTracer', tracerConfig: { ...(o.onlyTopCall ? { onlyTopCall: true } : {}), ...(o.withLog ? { withLog: true } : {}) } }
    case 'prestateTracer':
      return { tracer: 'prestateTracer', tracerConfig: o.diffMode ? { diffMode: true } : {} }
    default:
      return { tracer: o.tracer }
  }
}

/** The first path where two JSON values differ, with both values; null when equal. */
export function firstDifference(ours: unknown, theirs: unknown, path = '$'): { path: string; ours: unknown; node: unknown } | null {
  if (JSON.stringify(ours) === JSON.stringify(theirs)) return null
  if (ours !== null && theirs !== null && typeof ours === 'object' && typeof theirs === 'object' && Array.isArray(ours) === Array.isArray(theirs)) {
    const a = ours as Record<string, unknown>
    const b = theirs as Record<string, unknown>
    const keys = Array.isArray(ours) ? [...Array(Math.max(ours.length, (theirs as unknown[]).length)).keys()].map(String) : [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()
    for (const k of keys) {
      const d = firstDifference(a[k], b[k], Array.isArray(ours) ? `${path}[${k}]` : `${path}.${k}`)
      if (d) return d
    }
    // Same members in another key order: JSON-equal.
    return null
  }
  return { path, ours, node: theirs }
}

type Line = { number: number; traces: unknown[] }

export async function traceCommand(target: string, options: TraceOptions): Promise<number> {
  const config = traceConfigOf(options)
  if (options.compareRpc && !options.rpc) throw new UsageError('--compare-rpc needs --rpc')
  const out: WriteStream | undefined = options.out ? createWriteStream(options.out) : undefined
  const write = (line: unknown) => {
    const text = JSON.stringify(line, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))
    if (out) out.write(`${text}\n`)
    else console.log(text)
  }
  let failed = 0
  const report = (e: unknown, where: string) => {
    failed++
    if (e instanceof UsageError) throw e
    const err = e as { code?: string; message: string; details?: string }
    console.error(`${where}: ${err.code ?? 'ERROR'}: ${err.details || err.message}`)
  }
  try {
    if (options.rpc) {
      const spec = parseBlockSpec(target)
      const rpc = new Rpc({ rpcUrl: options.rpc })
      const chainId = options.chainId ?? (await rpc.chainId())
      if (chainId !== 1 && !options.hardfork) throw new UsageError(`chain ${chainId} is not Ethereum mainnet: name its hardfork with --hardfork (e.g. cancun)`)
      const chain: ChainConfig = { chainId, ...(options.hardfork ? { hardfork: options.hardfork } : {}) }
      const state = rpcState({ rpc, chainId })
      const numbers: (bigint | 'latest')[] = []
      if ('latest' in spec) numbers.push('latest')
      else for (let n = spec.from; n <= spec.to; n++) numbers.push(n)
      for (const n of numbers) {
        try {
          const { block } = await loadBlock({ rpc, blockNumber: n, chainId })
          const result = await executeBlock({ block, state, chain, trace: config, threads: options.threads, mode: options.mode })
          const line: Line = { number: Number(result.number), traces: result.traces! }
          write(line)
          if (options.compareRpc) {
            const tag = `0x${result.number.toString(16)}`
            const theirs = await rpc.request<unknown[]>('debug_traceBlockByNumber', [tag, config])
            const diff = firstDifference(line.traces, theirs)
            if (diff) {
              failed++
              console.error(`block ${line.number}: differs from the node at ${diff.path}: ours ${JSON.stringify(diff.ours)}, node ${JSON.stringify(diff.node)}`)
            } else {
              console.error(`block ${line.number}: ${line.traces.length} traces equal the node's`)
            }
          }
        } catch (e) {
          report(e, `block ${n}`)
        }
      }
    } else {
      for (const p of blockPaths(target)) {
        try {
          const fx = await prepareFixture(p)
          const result = await executeBlock({ block: fx.block, state: fx.state, trace: config, threads: options.threads, mode: options.mode })
          write({ number: Number(result.number), traces: result.traces! } satisfies Line)
        } catch (e) {
          report(e, p)
        }
      }
    }
  } finally {
    if (out) await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())))
  }
  return failed === 0 ? 0 : 1
}
