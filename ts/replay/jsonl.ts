// Replay output as JSON lines: one line per block (number, hashes, receipts with their logs, state
// diff), appended as each block arrives. Resuming reads the last complete line back; a line cut
// short by a crash is dropped, so the range continues with no gap and no duplicate.
import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs'
import type { Hash } from 'viem'
import { InvalidInputError } from '../errors.js'
import { nativeOutputOf } from '../result.js'
import type { ReplayedBlock } from './replay.js'

/** The last block an output holds. */
export type OutputPosition = { number: bigint; hash: Hash }

/** Where replayed blocks are written (one per block, in order). */
export interface ReplaySink {
  /** The last block written (after a resume: the last block the output held). */
  readonly last: OutputPosition | undefined
  /** Files write at once; a database may return a promise (awaited before the next block). */
  write(block: ReplayedBlock): void | Promise<void>
  close(): void | Promise<void>
}

export type SinkOptions = {
  /** Continue after what the output holds; without it, an output that holds blocks is refused. */
  resume?: boolean
}

const CHUNK = 1 << 20

/** The last complete line of an open file and where it ends (bytes after it are a cut-off line). */
function lastLine(fd: number): { line: string | undefined; end: number } {
  const size = fstatSync(fd).size
  let pos = size
  let tail = Buffer.alloc(0)
  let end = -1
  // Backwards in chunks: lines hold whole blocks' receipts and can be megabytes long.
  while (pos > 0) {
    const len = Math.min(CHUNK, pos)
    pos -= len
    const chunk = Buffer.alloc(len)
    readSync(fd, chunk, 0, len, pos)
    tail = Buffer.concat([chunk, tail])
    if (end < 0) {
      const nl = tail.lastIndexOf(0x0a)
      if (nl < 0) continue
      end = pos + nl + 1
    }
    const lineEnd = end - pos - 1
    const start = lineEnd > 0 ? tail.lastIndexOf(0x0a, lineEnd - 1) : -1
    if (start >= 0) return { line: tail.subarray(start + 1, lineEnd).toString('utf8'), end }
  }
  if (end < 0) return { line: undefined, end: 0 }
  return { line: tail.subarray(0, end - 1).toString('utf8'), end }
}

/** Appends one JSON line per block to a file. */
export class JsonlSink implements ReplaySink {
  readonly path: string
  last: OutputPosition | undefined
  private fd: number
  private offset: number

  constructor(path: string, options: SinkOptions = {}) {
    this.path = path
    this.fd = openSync(path, existsSync(path) ? 'r+' : 'w+')
    try {
      const { line, end } = lastLine(this.fd)
      if (line !== undefined) {
        if (!options.resume) throw new InvalidInputError(`${path} already holds replayed blocks: resume, or write to a new file`)
        let parsed: { number?: unknown; hash?: unknown }
        try {
          parsed = JSON.parse(line) as typeof parsed
        } catch {
          throw new InvalidInputError(`${path}: its last complete line is not JSON; not a replay output`)
        }
        if (typeof parsed.number !== 'number' || typeof parsed.hash !== 'string') throw new InvalidInputError(`${path}: its last line has no block number and hash; not a replay output`)
        this.last = { number: BigInt(parsed.number), hash: parsed.hash as Hash }
      }
      // Drops a line a crash cut short.
      if (fstatSync(this.fd).size > end) ftruncateSync(this.fd, end)
      this.offset = end
    } catch (e) {
      closeSync(this.fd)
      throw e
    }
  }

  write(block: ReplayedBlock): void {
    const output = nativeOutputOf(block)
    // The engine's JSON as is: quantities in hex, as JSON-RPC has them.
    const receipts = output ? output.receiptsJson() : JSON.stringify(block.receipts, (_, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))
    const diff = output ? output.stateDiffJson() : JSON.stringify(block.stateDiff, (_, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))
    const head = JSON.stringify({
      number: Number(block.number),
      hash: block.hash,
      parentHash: block.parentHash,
      timestamp: Number(BigInt(block.block.timestamp as string)),
      gasUsed: `0x${block.gasUsed.toString(16)}`,
      verification: block.verification,
    })
    // With `trace`: the node's debug_traceBlockByNumber answer, as the engine wrote it.
    const traces = output?.tracesJson ? `,"traces":${output.tracesJson}` : ''
    const line = `${head.slice(0, -1)},"receipts":${receipts},"stateDiff":${diff}${traces}}\n`
    // One write per block: a crash leaves at most this line cut short, which a resume drops.
    const bytes = Buffer.from(line, 'utf8')
    writeSync(this.fd, bytes, 0, bytes.length, this.offset)
    this.offset += bytes.length
    this.last = { number: block.number, hash: block.hash }
  }

  close(): void {
    closeSync(this.fd)
  }
}
