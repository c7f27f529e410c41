// The JSON-RPC connection: a viem PublicClient (given, or built over HTTP with retries), a
// counter of calls, and typed errors for requests that fail after every retry.
import { createPublicClient, http, type PublicClient } from 'viem'
import { InvalidInputError, RpcError } from '../errors.js'

export type RpcOptions = {
  /** Retries per request on timeouts, HTTP 408/429/5xx, dropped connections and unparseable bodies (default 5). */
  retryCount?: number
  /** Base delay of the exponential backoff in ms: delay * 2^attempt (default 150). */
  retryDelay?: number
  /** Per-request timeout in ms (default 30000). */
  timeout?: number
  /** Requests per JSON-RPC batch over HTTP (default 50; 1 disables batching). */
  batchSize?: number
  /**
   * Largest HTTP response body in bytes (default 256 MiB). viem's own default (10 MiB) is less
   * than one mainnet execution witness with the block batched beside it.
   */
  maxResponseBytes?: number
}

/** Where to read from: a viem PublicClient, or an RPC URL (HTTP). */
export type RpcSource = { client: PublicClient; rpcUrl?: never } | { rpcUrl: string; client?: never }

/** No node at all: only the cache answers (every request fails with an `RpcError`). */
export const OFFLINE = { offline: true } as const

/** A client with a call counter; requests that fail become `RpcError`. */
export class Rpc {
  readonly client: PublicClient | undefined
  /** JSON-RPC calls made (retries of one call count once). */
  calls = 0
  private chainIdPromise: Promise<number> | undefined

  constructor(source: RpcSource | typeof OFFLINE, options: RpcOptions = {}) {
    if ('offline' in source && source.offline) {
      this.client = undefined
    } else if ('client' in source && source.client) {
      this.client = source.client
    } else if ('rpcUrl' in source && typeof source.rpcUrl === 'string' && /^https?:\/\//.test(source.rpcUrl)) {
      // viem's http transport retries with exponential backoff (and Retry-After) on exactly the
      // failures worth retrying: timeouts, 408/429/5xx, network errors and unparseable bodies.
      const batchSize = options.batchSize ?? 50
      this.client = createPublicClient({
        transport: http(source.rpcUrl, {
          retryCount: options.retryCount ?? 5,
          retryDelay: options.retryDelay ?? 150,
          timeout: options.timeout ?? 30_000,
          batch: batchSize > 1 ? { batchSize, wait: 0 } : false,
          maxResponseBodySize: options.maxResponseBytes ?? 256 * 1024 * 1024,
        }),
      })
    } else {
      throw new InvalidInputError(`give either a viem client or an http(s) rpcUrl, got ${JSON.stringify((source as { rpcUrl?: unknown })?.rpcUrl ?? source)}`)
    }
  }

  /** One JSON-RPC call; any failure left after the transport's retries is an `RpcError`. */
  async request<T>(method: string, params: unknown[]): Promise<T> {
    if (!this.client) throw new RpcError(method, 'offline: the cache does not hold this data and no node was given')
    this.calls++
    try {
      // viem types only the standard methods; debug_* and friends go through the same path.
      return (await this.client.request({ method, params } as never)) as T
    } catch (e) {
      const err = e as { shortMessage?: string; details?: string; message?: string }
      throw new RpcError(method, [err.shortMessage, err.details].filter(Boolean).join(': ') || String(err.message ?? e), { cause: e })
    }
  }

  /** The node's chain id (asked once). */
  chainId(): Promise<number> {
    this.chainIdPromise ??= this.request<string>('eth_chainId', []).then((hex) => {
      const n = Number(hex)
      if (!Number.isSafeInteger(n) || n < 0) throw new RpcError('eth_chainId', `not a chain id: ${JSON.stringify(hex)}`)
      return n
    })
    return this.chainIdPromise
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; fails on the first failure. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  let failed = false
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++
      try {
        out[i] = await fn(items[i]!)
      } catch (e) {
        failed = true
        throw e
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}
