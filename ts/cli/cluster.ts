// `parallel-evm cluster enqueue|work|status|retry-failed`: a range replay spread over BullMQ
// workers (Redis) writing into Postgres (see ts/cluster/).
import { clusterStatus, enqueueRange, retryFailed } from '../cluster/queue.js'
import { type ChunkEvent, startWorker } from '../cluster/worker.js'
import type { ReplayStateSource } from '../replay/replay.js'
import { StateCache } from '../rpc/cache.js'
import { UsageError } from './format.js'
import { parseBlockSpec } from './run-rpc.js'

const json = (v: unknown) => JSON.stringify(v, (_, x: unknown) => (typeof x === 'bigint' ? Number(x) : x))

export async function clusterEnqueueCommand(
  spec: string,
  options: { redis: string; queue?: string; chunk: number; state: ReplayStateSource; chainId?: number; hardfork?: string; json: boolean },
): Promise<number> {
  const range = parseBlockSpec(spec)
  if ('latest' in range) throw new UsageError("enqueue takes a block number or a range a..b, not 'latest'")
  if (options.state === ('witness' as string)) throw new UsageError('--state witness is not available yet: use prestate or proofs')
  const r = await enqueueRange({
    redisUrl: options.redis,
    queue: options.queue,
    from: range.from,
    to: range.to,
    chunk: options.chunk,
    state: options.state,
    chainId: options.chainId,
    hardfork: options.hardfork,
  })
  if (options.json) console.log(json(r))
  else console.log(`${r.added} chunks added, ${r.alreadyQueued} already on the queue (${r.chunks} chunks of up to ${options.chunk} blocks for ${range.from}..${range.to})`)
  return 0
}

export async function clusterWorkCommand(options: {
  redis: string
  queue?: string
  rpc: string
  postgres: string
  concurrency: number
  threads: number
  prefetch?: number
  cache?: string
  lockDuration: number
  json: boolean
}): Promise<number> {
  const cache = options.cache ? new StateCache(options.cache) : undefined
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`
  const log = (e: ChunkEvent) => {
    if (options.json) console.log(json(e))
    else if (e.event === 'started') console.log(`chunk ${e.from}..${e.to}: started`)
    else if (e.event === 'done') {
      const t = e.timings
      const split = e.alreadyPresent ? '' : ` (waiting on the node ${s(t.waitMs)}, executing ${s(t.executeMs)}, writing ${s(t.writeMs)})`
      console.log(`chunk ${e.from}..${e.to}: ${e.alreadyPresent ? 'already in Postgres' : `${e.written} blocks written`} in ${s(e.ms)}${split}`)
    } else console.error(`chunk ${e.from}..${e.to}: failed: ${e.error}`)
  }
  const worker = await startWorker({
    redisUrl: options.redis,
    queue: options.queue,
    rpcUrl: options.rpc,
    postgresUrl: options.postgres,
    concurrency: options.concurrency,
    threads: options.threads,
    prefetch: options.prefetch,
    cache,
    lockDurationMs: options.lockDuration,
    onEvent: log,
  })
  if (options.json) console.log(json({ event: 'ready', pid: process.pid }))
  else console.log(`worker ${process.pid} waiting for chunks (SIGTERM/SIGINT: finish the chunks in hand and stop; twice: stop now)`)
  // The first signal finishes the chunks in hand; a second leaves them to other workers (their
  // Postgres transactions roll back with the connections) and exits at once.
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.once('SIGINT', () => process.exit(130))
      process.once('SIGTERM', () => process.exit(130))
      resolve()
    }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
  if (options.json) console.log(json({ event: 'stopping' }))
  await worker.close()
  cache?.close()
  return 0
}

export async function clusterStatusCommand(options: { redis: string; queue?: string; json: boolean }): Promise<number> {
  const s = await clusterStatus({ redisUrl: options.redis, queue: options.queue })
  if (options.json) console.log(json(s))
  else {
    console.log(`waiting ${s.waiting}, active ${s.active}, delayed ${s.delayed}, completed ${s.completed}, failed ${s.failed}; ${s.blocksPerSecond} blocks/s over the last minute`)
    for (const f of s.failedChunks) console.log(`failed chunk ${f.from}..${f.to} (${f.attempts} attempts): ${f.error}`)
  }
  return s.failed > 0 ? 1 : 0
}

export async function clusterRetryCommand(options: { redis: string; queue?: string; json: boolean }): Promise<number> {
  const r = await retryFailed({ redisUrl: options.redis, queue: options.queue })
  if (options.json) console.log(json(r))
  else console.log(`${r.retried} failed chunks moved back to waiting`)
  return 0
}
