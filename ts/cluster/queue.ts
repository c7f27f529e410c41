// A range split into chunk jobs on a BullMQ queue (Redis): any number of workers, on any number of
// machines, take chunks and replay them into Postgres (./worker.ts). A chunk's job id is its
// range, so enqueuing the same range again adds nothing; completed and failed jobs are kept, which
// is what makes that hold after the run, and what `clusterStatus` reads.
import type { Job, JobsOptions, Queue } from 'bullmq'
import { InvalidInputError } from '../errors.js'
import type { ReplayStateSource } from '../replay/replay.js'

/** The queue used when none is named. */
export const DEFAULT_QUEUE = 'parallel-evm-replay'
/** Blocks per chunk when none is given. */
export const DEFAULT_CHUNK = 100

/** What a chunk job carries (block numbers as decimal strings: job data is JSON). */
export type ChunkJobData = { from: string; to: string; state: ReplayStateSource; chainId?: number; hardfork?: string }

/** What a worker returns for a chunk (kept by BullMQ as the job's return value). */
export type ChunkResult = {
  blocks: number
  written: number
  alreadyPresent: boolean
  headerFailures: number
  /** From taking the chunk to its commit, ms. */
  ms: number
  /**
   * Where that time went, ms: waiting on the node for blocks and their up-front state, executing
   * (rounds that fetch missed keys included), writing into Postgres, and until the first block
   * was executed (the chunk's cold start: its carried state begins empty). When the chunk was
   * already there, all but `writeMs` (the check) are zero.
   */
  timings: { waitMs: number; executeMs: number; writeMs: number; firstBlockMs: number }
  worker: string
}

export type ClusterConnection = {
  /** redis://[user:password@]host:port[/db] */
  redisUrl: string
  /** Queue name (default 'parallel-evm-replay'); one queue per backfill keeps their statuses apart. */
  queue?: string
}

// Kept after completion or failure: a kept id is what makes a second enqueue add nothing.
const JOB_OPTIONS: JobsOptions = { attempts: 3, backoff: { type: 'exponential', delay: 2_000 }, removeOnComplete: false, removeOnFail: false }

/** bullmq (and its Redis client) is loaded when a cluster function is first called, not with the package. */
export function bullmq(): typeof import('bullmq') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('bullmq') as typeof import('bullmq')
}

export function chunkJobId(from: bigint, to: bigint): string {
  // BullMQ refuses integer-looking ids and ':'.
  return `blocks-${from}-${to}`
}

export function openQueue(connection: ClusterConnection): Queue<ChunkJobData, ChunkResult> {
  if (typeof connection?.redisUrl !== 'string' || !/^rediss?:\/\//.test(connection.redisUrl)) throw new InvalidInputError(`a Redis URL is redis://host:port, got ${String(connection?.redisUrl)}`)
  const queue = new (bullmq().Queue)<ChunkJobData, ChunkResult>(connection.queue ?? DEFAULT_QUEUE, { connection: { url: connection.redisUrl } })
  // Reconnection is ioredis's; an error event without a listener would throw.
  queue.on('error', () => {})
  return queue
}

export type EnqueueRangeParameters = ClusterConnection & {
  from: bigint | number
  to: bigint | number
  /** Blocks per chunk (default 100). Chunks are aligned on `from`: the same range gives the same chunks. */
  chunk?: number
  state?: ReplayStateSource
  chainId?: number
  hardfork?: string
}

export type EnqueueRangeReturnType = { chunks: number; added: number; alreadyQueued: number }

function blockNumber(name: string, v: unknown): bigint {
  if (typeof v === 'bigint' && v >= 0n) return v
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v)
  throw new InvalidInputError(`${name} must be a non-negative block number, got ${String(v)}`)
}

/** Splits `from`..`to` into chunk jobs; chunks already on the queue (in any state) are not added again. */
export async function enqueueRange(params: EnqueueRangeParameters): Promise<EnqueueRangeReturnType> {
  const from = blockNumber('from', params.from)
  const to = blockNumber('to', params.to)
  if (to < from) throw new InvalidInputError(`empty range: to (${to}) is before from (${from})`)
  const chunk = params.chunk ?? DEFAULT_CHUNK
  if (!Number.isSafeInteger(chunk) || chunk < 1) throw new InvalidInputError(`chunk must be a positive integer, got ${String(chunk)}`)
  const state = params.state ?? 'prestate'
  if (state !== 'prestate' && state !== 'proofs') throw new InvalidInputError(`state ${String(state)} is not available to workers: use prestate or proofs`)
  if (params.chainId !== undefined && params.chainId !== 1 && !params.hardfork) throw new InvalidInputError(`chain ${params.chainId} is not Ethereum mainnet: name its hardfork (e.g. cancun)`)
  const queue = openQueue(params)
  try {
    const jobs: { name: string; data: ChunkJobData; opts: JobsOptions }[] = []
    let alreadyQueued = 0
    for (let a = from; a <= to; a += BigInt(chunk)) {
      const b = a + BigInt(chunk) - 1n < to ? a + BigInt(chunk) - 1n : to
      const jobId = chunkJobId(a, b)
      if (await queue.getJob(jobId)) {
        alreadyQueued++
        continue
      }
      const data: ChunkJobData = { from: a.toString(), to: b.toString(), state }
      if (params.chainId !== undefined) data.chainId = params.chainId
      if (params.hardfork) data.hardfork = params.hardfork
      jobs.push({ name: 'replay', data, opts: { ...JOB_OPTIONS, jobId } })
    }
    // A job id already there (another enqueuer in between) is ignored by BullMQ itself.
    if (jobs.length > 0) await queue.addBulk(jobs)
    return { chunks: jobs.length + alreadyQueued, added: jobs.length, alreadyQueued }
  } finally {
    await queue.close()
  }
}

export type FailedChunk = { id: string; from: bigint; to: bigint; error: string; attempts: number }

export type ClusterStatusReturnType = {
  waiting: number
  active: number
  delayed: number
  completed: number
  failed: number
  /** Blocks of the chunks finished in the last minute, per second of that minute (or of the run, when younger). */
  blocksPerSecond: number
  failedChunks: FailedChunk[]
}

/** Counts of the queue's chunks, recent throughput, and the failed chunks with their errors. */
export async function clusterStatus(params: ClusterConnection): Promise<ClusterStatusReturnType> {
  const queue = openQueue(params)
  try {
    const counts = await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed')
    const now = Date.now()
    const since = now - 60_000
    let blocks = 0
    let earliest = now
    // Newest first: stop at the first chunk finished before the minute.
    for (let start = 0; ; start += 200) {
      const page = (await queue.getCompleted(start, start + 199)) as Job<ChunkJobData, ChunkResult>[]
      const recent = page.filter((j) => (j.finishedOn ?? 0) >= since)
      for (const j of recent) {
        blocks += j.returnvalue?.written ?? 0
        earliest = Math.min(earliest, j.processedOn ?? j.finishedOn ?? now)
      }
      if (page.length < 200 || recent.length < page.length) break
    }
    const window = Math.max(now - Math.max(earliest, since), 1)
    const failed = (await queue.getFailed(0, -1)) as Job<ChunkJobData, ChunkResult>[]
    return {
      waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
      active: counts.active ?? 0,
      delayed: counts.delayed ?? 0,
      completed: counts.completed ?? 0,
      failed: counts.failed ?? 0,
      blocksPerSecond: blocks === 0 ? 0 : Math.round((blocks / (window / 1000)) * 100) / 100,
      failedChunks: failed.map((j) => ({ id: j.id ?? '', from: BigInt(j.data.from), to: BigInt(j.data.to), error: j.failedReason, attempts: j.attemptsMade })),
    }
  } finally {
    await queue.close()
  }
}

/** Moves every failed chunk back to waiting (their attempts start again); returns how many. */
export async function retryFailed(params: ClusterConnection): Promise<{ retried: number }> {
  const queue = openQueue(params)
  try {
    const failed = await queue.getFailed(0, -1)
    for (const j of failed) await j.retry('failed')
    return { retried: failed.length }
  } finally {
    await queue.close()
  }
}
