// `parallel-evm replay --rpc <url> <a..b>`: a range replayed through `replayBlocks`, each block
// executed once and checked against its header, written to JSON lines, SQLite and/or Postgres, resumable.
import cliProgress from 'cli-progress'
import type { Hash } from 'viem'
import { ParallelEvmError, ReplayError } from '../errors.js'
import type { ExecutionMode } from '../execute.js'
import { StateCache } from '../rpc/cache.js'
import { Rpc } from '../rpc/client.js'
import { headerPassed } from '../result.js'
import { JsonlSink, type OutputPosition, type ReplaySink } from '../replay/jsonl.js'
import { DEFAULT_PREFETCH, replayBlocks, type ReplayReorgPolicy, type ReplayStateSource } from '../replay/replay.js'
import { PostgresSink } from '../replay/postgres.js'
import { SqliteSink } from '../replay/sqlite.js'
import type { TracerName } from '../trace.js'
import { fmtGas, headerLine, UsageError } from './format.js'
import { parseBlockSpec } from './run-rpc.js'

export type ReplayCommandOptions = {
  rpc: string
  state: ReplayStateSource
  prefetch?: number
  batch?: number
  tracer?: TracerName
  onReorg: ReplayReorgPolicy
  carry: boolean
  carryBudget?: number
  cache?: string
  out?: string
  sqlite?: string
  postgres?: string
  resume: boolean
  threads: number
  mode: ExecutionMode
  hardfork?: string
  chainId?: number
  json: boolean
}

const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits

/** Where to start: after the last block every output holds (they may differ after a crash between writes). */
function resumePoint(sinks: ReplaySink[], from: bigint): { from: bigint; parentHash?: Hash } {
  const lasts = sinks.map((s) => s.last)
  if (lasts.some((l) => l === undefined)) return { from }
  const min = (lasts as OutputPosition[]).reduce((a, b) => (b.number < a.number ? b : a))
  if (min.number + 1n < from) throw new UsageError(`the output ends at block ${min.number}, before the range starts at ${from}: resuming would leave a gap`)
  // Continues after the output's last block, which the next block must name as its parent.
  return { from: min.number + 1n > from ? min.number + 1n : from, parentHash: min.hash }
}

export async function replayCommand(spec: string, options: ReplayCommandOptions): Promise<number> {
  const range = parseBlockSpec(spec)
  if ('latest' in range) throw new UsageError("replay takes a block number or a range a..b, not 'latest'")
  if (options.resume && !options.out && !options.sqlite && !options.postgres) throw new UsageError('--resume needs --out, --sqlite or --postgres (the output to continue)')
  const rpc = new Rpc({ rpcUrl: options.rpc })
  const chainId = options.chainId ?? (await rpc.chainId())
  if (chainId !== 1 && !options.hardfork) throw new UsageError(`chain ${chainId} is not Ethereum mainnet: name its hardfork with --hardfork (e.g. cancun)`)
  const sinks: ReplaySink[] = []
  const cache = options.cache ? new StateCache(options.cache) : undefined
  const controller = new AbortController()
  const onSignal = () => controller.abort(new UsageError('interrupted'))
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  let bar: cliProgress.SingleBar | undefined
  const started = performance.now()
  let blocks = 0
  let failed = 0
  let gas = 0n
  let error: ParallelEvmError | UsageError | undefined
  try {
    if (options.out) sinks.push(new JsonlSink(options.out, { resume: options.resume }))
    if (options.sqlite) sinks.push(new SqliteSink(options.sqlite, { resume: options.resume }))
    if (options.postgres) sinks.push(await PostgresSink.open({ url: options.postgres, resume: options.resume }))
    const start = options.resume ? resumePoint(sinks, range.from) : { from: range.from }
    const total = Number(range.to - start.from + 1n)
    if (total <= 0) {
      if (!options.json) console.log(`nothing to do: the output already holds blocks up to ${range.to}`)
    } else {
      bar =
        !options.json && process.stderr.isTTY
          ? new cliProgress.SingleBar(
              { format: '{bar} {value}/{total} blocks | {bps} blocks/s | {mgas} Mgas/s | {rps} RPC calls/s | ETA {eta_formatted}', etaBuffer: 50 },
              cliProgress.Presets.shades_classic,
            )
          : undefined
      bar?.start(total, 0, { bps: '0', mgas: '0', rps: '0' })
      const chain = { chainId, ...(options.hardfork ? { hardfork: options.hardfork } : {}) }
      for await (const b of replayBlocks({
        rpc,
        from: start.from,
        to: range.to,
        parentHash: start.parentHash,
        state: options.state,
        cache,
        chain,
        chainId,
        threads: options.threads,
        mode: options.mode,
        prefetch: options.prefetch ?? DEFAULT_PREFETCH,
        batchSize: options.batch,
        trace: options.tracer,
        onReorg: options.onReorg,
        carryState: options.carry,
        carryBudgetBytes: options.carryBudget,
        signal: controller.signal,
      })) {
        for (const s of sinks) if (s.last === undefined || b.number > s.last.number) await s.write(b)
        blocks++
        gas += b.gasUsed
        const v = b.verification
        const ok = headerPassed(v)
        if (!ok) failed++
        const line = {
          number: Number(b.number),
          hash: b.hash,
          txs: b.receipts.length,
          gasUsed: Number(b.gasUsed),
          verified: v,
          state: { rpcCalls: b.replay.rpcCalls, cacheHits: b.replay.cacheHits, carriedKeys: b.replay.carriedKeys, fetchedKeys: b.replay.fetchedKeys, rounds: b.replay.rounds },
          fetchMs: round(b.timings.fetchMs),
          waitMs: round(b.timings.waitMs),
          executeMs: round(b.timings.executeMs),
        }
        if (options.json) console.log(JSON.stringify(line))
        else if (!bar || !ok) {
          bar?.stop()
          console.log(
            `block ${line.number}: ${line.txs} txs, ${fmtGas(line.gasUsed)} gas; ${headerLine(v)}; ${line.state.rpcCalls} RPC calls, ${line.state.fetchedKeys} keys fetched, ${line.state.carriedKeys} carried`,
          )
          bar?.start(total, blocks)
        }
        const seconds = (performance.now() - started) / 1000
        bar?.update(blocks, { bps: (blocks / seconds).toFixed(1), mgas: (Number(gas) / 1e6 / seconds).toFixed(1), rps: (rpc.calls / seconds).toFixed(0) })
      }
    }
  } catch (e) {
    if (e instanceof ParallelEvmError || e instanceof UsageError) error = e
    else throw e
  } finally {
    bar?.stop()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    for (const s of sinks) await s.close()
    cache?.close()
  }
  const wallMs = performance.now() - started
  if (error) {
    // Bad arguments found before the range started are usage errors (exit 2); anything after is the range's failure.
    if (blocks === 0 && !(error instanceof ReplayError) && error.name !== 'ReorgError' && error.name !== 'StateMismatchError' && !(error instanceof UsageError && error.message === 'interrupted')) {
      throw error
    }
    const err = error as ParallelEvmError & { blockNumber?: bigint; causeCode?: string }
    const code = err instanceof ParallelEvmError ? (err.causeCode ?? err.code) : 'INTERRUPTED'
    const detail = err instanceof ParallelEvmError ? err.details || err.shortMessage : (error as UsageError).message
    if (options.json) console.log(JSON.stringify({ block: err.blockNumber !== undefined ? Number(err.blockNumber) : null, error: detail, code }))
    else console.error(`${err.blockNumber !== undefined ? `block ${err.blockNumber}: ` : ''}${code}: ${detail}`)
  }
  const summary = {
    blocks,
    verified: blocks - failed,
    failed: failed + (error ? 1 : 0),
    wallMs: round(wallMs, 1),
    rpcCalls: rpc.calls,
    blocksPerSecond: round(blocks / (wallMs / 1000), 2),
    mgasPerSecond: round(Number(gas) / 1e6 / (wallMs / 1000), 2),
  }
  if (options.json) console.log(JSON.stringify({ summary }))
  else console.log(`${summary.verified}/${blocks} blocks verified in ${(wallMs / 1000).toFixed(1)} s: ${summary.blocksPerSecond} blocks/s, ${summary.mgasPerSecond} Mgas/s, ${rpc.calls} RPC calls`)
  if (error instanceof UsageError) return 130
  return summary.failed === 0 ? 0 : 1
}
