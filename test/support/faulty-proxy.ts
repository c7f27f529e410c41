// A local HTTP proxy in front of a node that injects faults on a deterministic schedule (delays,
// 429/5xx, truncated JSON, dropped sockets) and counts the JSON-RPC calls that reach it.
import { createServer, type Server } from 'node:http'

export type Fault = { kind: 'delay'; ms: number } | { kind: 'status'; status: number } | { kind: 'truncate' } | { kind: 'drop' }

export type FaultyProxy = {
  url: string
  /** HTTP requests received (including faulted ones). */
  httpRequests: number
  /** JSON-RPC calls received (a batch counts each call). */
  rpcCalls: number
  /** Calls per method. */
  methods: Map<string, number>
  /** Faults applied, in order. */
  applied: Fault['kind'][]
  /** Faults for the next HTTP requests, one each, then none. */
  schedule(faults: Fault[]): void
  /** A fault for every request until cleared (null). */
  always(fault: Fault | null): void
  /** Rewrites each JSON-RPC request before it is forwarded (e.g. to ask for another block). */
  rewrite: ((call: { method: string; params: unknown[] }) => void) | null
  /** Sees each HTTP request's JSON-RPC calls (a batch: several). */
  onRequest: ((calls: { method: string; params: unknown[] }[]) => void) | null
  /** Rewrites each JSON-RPC result before it is returned (e.g. to falsify a value). */
  rewriteResult: ((call: { method: string; params: unknown[] }, result: unknown) => unknown) | null
  reset(): void
  stop(): Promise<void>
}

export async function startFaultyProxy(target: string): Promise<FaultyProxy> {
  let queue: Fault[] = []
  let permanent: Fault | null = null
  const proxy: FaultyProxy = {
    url: '',
    httpRequests: 0,
    rpcCalls: 0,
    methods: new Map(),
    applied: [],
    schedule(faults) {
      queue = [...faults]
    },
    always(fault) {
      permanent = fault
    },
    rewrite: null,
    onRequest: null,
    rewriteResult: null,
    reset() {
      proxy.httpRequests = 0
      proxy.rpcCalls = 0
      proxy.methods.clear()
      proxy.applied = []
      queue = []
      permanent = null
      proxy.rewrite = null
      proxy.onRequest = null
      proxy.rewriteResult = null
    },
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  }
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', async () => {
      proxy.httpRequests++
      let body = Buffer.concat(chunks).toString('utf8')
      let calls: { id?: unknown; method: string; params: unknown[] }[] = []
      try {
        const parsed = JSON.parse(body) as { method: string; params: unknown[] } | { method: string; params: unknown[] }[]
        calls = Array.isArray(parsed) ? parsed : [parsed]
        for (const c of calls) {
          proxy.rpcCalls++
          proxy.methods.set(c.method, (proxy.methods.get(c.method) ?? 0) + 1)
          proxy.rewrite?.(c)
        }
        proxy.onRequest?.(calls)
        body = JSON.stringify(parsed)
      } catch {
        // Forwarded as is: the node answers malformed requests itself.
      }
      const fault = permanent ?? queue.shift()
      if (fault) proxy.applied.push(fault.kind)
      if (fault?.kind === 'drop') {
        req.socket.destroy()
        return
      }
      if (fault?.kind === 'status') {
        res.writeHead(fault.status, { 'content-type': 'text/plain' })
        res.end(fault.status === 429 ? 'rate limited' : 'upstream failure')
        return
      }
      if (fault?.kind === 'delay') await new Promise((r) => setTimeout(r, fault.ms))
      try {
        const upstream = await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
        let text = await upstream.text()
        const rewriteResult = proxy.rewriteResult
        if (rewriteResult) {
          try {
            const answer = JSON.parse(text) as { id?: unknown; result?: unknown } | { id?: unknown; result?: unknown }[]
            for (const a of Array.isArray(answer) ? answer : [answer]) {
              const c = calls.find((c) => c.id === a.id)
              if (c && 'result' in a) a.result = rewriteResult(c, a.result)
            }
            text = JSON.stringify(answer)
          } catch {
            // Left as is.
          }
        }
        if (res.destroyed) return
        res.writeHead(upstream.status, { 'content-type': 'application/json' })
        // Half a JSON document, as a connection cut mid-response leaves it.
        res.end(fault?.kind === 'truncate' ? text.slice(0, Math.floor(text.length / 2)) : text)
      } catch {
        res.destroy()
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const { port } = server.address() as { port: number }
  proxy.url = `http://127.0.0.1:${port}`
  return proxy
}
