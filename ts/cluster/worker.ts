// A worker of a distributed range replay: a BullMQ Worker that takes chunk jobs (./queue.ts),
// replays each chunk with `replayBlocks` (pipelined, state carried within the chunk) and writes
// it into Postgres in one transaction. A worker that dies mid-chunk leaves no rows (the
// transaction goes with its connection) and its chunk, no longer locked, is handed to another
// worker by BullMQ's stalled-job check; a chunk whose blocks are all there is acknowledged
// without replaying or writing it again.
import { hostname } from 'node:os'
import type { Job } from 'bullmq'
import { InvalidInputError } from '../errors.js'
import type { ExecutionMode } from '../execute.js'
import { PostgresSink } from '../replay/postgres.js'
import { replayBlocks, type ReplayedBlock } from '../replay/replay.js'
import type { StateCache } from '../rpc/cache.js'
import { Rpc, type RpcOptions } from '../rpc/client.js'
import { headerPassed } from '../result.js'
import { bullmq, type ChunkJobData, type ChunkResult, type ClusterConnection, DEFAULT_QUEUE } from './queue.js'

/** What a worker reports as it goes. */
export type ChunkEvent =
  | { event: 'started'; id: string; from: bigint; to: bigint }
  | ({ event: 'done'; id: string; from: bigint; to: bigint } & ChunkResult)
  | { event: 'failed'; id: string; from: bigint; to: bigint; error: string }

export type StartWorkerParameters = ClusterConnection & {
  /** The JSON-RPC node the blocks and state come from. */
  rpcUrl: string
  rpcOptions?: RpcOptions
  /** postgres://user:password@host:port/database */
  postgresUrl: string
  /** Chunks replayed at once by this worker (default 1). */
  concurrency?: number
  /** Engine worker threads per block (default: all cores). */
  threads?: number
  mode?: ExecutionMode
  /** Blocks fetched ahead within a chunk (replayBlocks' default when unset). */
  prefetch?: number
  cache?: StateCache
  /**
   * How long a chunk stays held by a worker that stopped renewing it (killed, machine gone)
   * before another worker takes it, ms (default 30 000).
   */
  lockDurationMs?: number
  onEvent?: (e: ChunkEvent) => void
}

export type ClusterWorker = {
  /** Stops taking chunks; the chunks in hand are finished (or, with `force`, left to other workers). */
  close(force?: boolean): Promise<void>
}

/** Starts a worker on the queue; it runs until `close()`. */
export async function startWorker(params: StartWorkerParameters): Promise<ClusterWorker> {
  const concurrency = params.concurrency ?? 1
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new InvalidInputError(`concurrency must be a positive integer, got ${String(concurrency)}`)
  const lockDuration = params.lockDurationMs ?? 30_000
  if (!Number.isSafeInteger(lockDuration) || lockDuration < 1000) throw new InvalidInputError(`lockDurationMs must be an integer >= 1000, got ${String(lockDuration)}`)
  if (typeof params.redisUrl !== 'string' || !/^rediss?:\/\//.test(params.redisUrl)) throw new InvalidInputError(`a Redis URL is redis://host:port, got ${String(params.redisUrl)}`)
  const sink = await PostgresSink.open({ url: params.postgresUrl, resume: true, connections: concurrency + 1 })
  const rpc = new Rpc({ rpcUrl: params.rpcUrl, ...params.rpcOptions })
  const name = `${hostname()}:${process.pid}`
  let nodeChainId: Promise<number> | undefined
  const emit = (e: ChunkEvent) => params.onEvent?.(e)

  async function processChunk(job: Job<ChunkJobData, ChunkResult>): Promise<ChunkResult> {
    const from = BigInt(job.data.from)
    const to = BigInt(job.data.to)
    const id = job.id ?? ''
    emit({ event: 'started', id, from, to })
    const started = performance.now()
    try {
      nodeChainId ??= rpc.chainId()
      const chainId = job.data.chainId ?? (await nodeChainId)
      // A chunk that can never succeed fails at once instead of using up its attempts.
      if (chainId !== 1 && !job.data.hardfork) throw new (bullmq().UnrecoverableError)(`chain ${chainId} is not Ethereum mainnet: enqueue with its hardfork (e.g. --hardfork cancun)`)
      let headerFailures = 0
      // Where the chunk's time went: waiting on the node for blocks and up-front state, executing
      // (with the rounds that fetch missed keys), and writing into Postgres.
      const time = { waitMs: 0, executeMs: 0, replayMs: 0, firstBlockMs: 0 }
      const blocks = async function* (): AsyncGenerator<ReplayedBlock> {
        let resumed = performance.now()
        for await (const b of replayBlocks({
          rpc,
          from,
          to,
          state: job.data.state,
          chain: { chainId, ...(job.data.hardfork ? { hardfork: job.data.hardfork } : {}) },
          chainId,
          threads: params.threads,
          mode: params.mode,
          prefetch: params.prefetch,
          cache: params.cache,
        })) {
          if (!headerPassed(b.verification)) headerFailures++
          time.waitMs += b.timings.waitMs
          time.executeMs += b.timings.executeMs
          if (b.number === from) time.firstBlockMs = performance.now() - started
          time.replayMs += performance.now() - resumed
          yield b
          resumed = performance.now()
        }
        time.replayMs += performance.now() - resumed
      }
      const write = await sink.writeRange(from, to, blocks)
      const ms = performance.now() - started
      const result: ChunkResult = {
        blocks: Number(to - from + 1n),
        written: write.written,
        alreadyPresent: write.alreadyPresent,
        headerFailures,
        ms: Math.round(ms),
        // Writing: everything but the replay itself (the range's lock and check, rows, commit).
        timings: { waitMs: Math.round(time.waitMs), executeMs: Math.round(time.executeMs), writeMs: Math.round(ms - time.replayMs), firstBlockMs: Math.round(time.firstBlockMs) },
        worker: name,
      }
      emit({ event: 'done', id, from, to, ...result })
      return result
    } catch (e) {
      emit({ event: 'failed', id, from, to, error: (e as Error).message })
      throw e
    }
  }

  const worker = new (bullmq().Worker)<ChunkJobData, ChunkResult>(params.queue ?? DEFAULT_QUEUE, processChunk, {
    connection: { url: params.redisUrl },
    concurrency,
    lockDuration,
    stalledInterval: lockDuration,
    // A chunk whose worker vanished goes back to the queue; more than 3 such losses fail it.
    maxStalledCount: 3,
    name,
  })
  // Redis going away is retried by the client; without a listener an error event would throw.
  worker.on('error', () => {})
  return {
    async close(force = false) {
      try {
        await worker.close(force)
      } finally {
        await sink.close()
      }
    },
  }
}
