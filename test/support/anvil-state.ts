// A real anvil node for tests: started on a free 127.0.0.1 port with automine off, so a test
// queues several transactions and mines them into one block; `anvil_dumpState` gives the full
// state before each block (what state-root verification needs).
import { spawn, type ChildProcess } from 'node:child_process'
import { gunzipSync } from 'node:zlib'
import { createPublicClient, http, type Hex, type PublicClient } from 'viem'
import type { Prestate } from '../../dist/index.js'
import { anvilBinary as shippedAnvil, freePort } from './anvil.js'

/** The anvil binary shipped by the `@foundry-rs/anvil-<platform>` npm package, if installed. */
export function anvilBinary(): string | undefined {
  try {
    return shippedAnvil()
  } catch {
    return undefined
  }
}

export type Anvil = {
  url: string
  client: PublicClient
  rpc<T = unknown>(method: string, params?: unknown[]): Promise<T>
  /** Every account of the current state (`anvil_dumpState`) as a prestate. */
  fullState(): Promise<Prestate>
  stop(): Promise<void>
}

type DumpedAccount = { nonce: number; balance: Hex; code: Hex; storage: Record<Hex, Hex> }

/** Starts anvil with automine off; `args` are extra flags (e.g. `--hardfork cancun`). */
export async function startAnvil(args: string[] = []): Promise<Anvil> {
  const bin = anvilBinary()
  if (!bin) throw new Error('anvil is not installed (npm package @foundry-rs/anvil)')
  const port = await freePort()
  const child: ChildProcess = spawn(bin, ['--host', '127.0.0.1', '--port', String(port), '--no-mining', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const url = `http://127.0.0.1:${port}`
  const client = createPublicClient({ transport: http(url, { retryCount: 0 }) }) as PublicClient
  const rpc = <T>(method: string, params: unknown[] = []) => client.request({ method, params } as never) as Promise<T>
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve()
      child.once('exit', () => resolve())
      child.kill('SIGTERM')
    })
  // Ready when it answers; give up after 20 s.
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`anvil exited (${child.exitCode}): ${stderr}`)
    try {
      await rpc('eth_chainId')
      break
    } catch (e) {
      if (i >= 200) {
        await stop()
        throw new Error(`anvil did not start on ${url}: ${(e as Error).message}\n${stderr}`)
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  return {
    url,
    client,
    rpc,
    stop,
    async fullState() {
      const hex = await rpc<Hex>('anvil_dumpState')
      const dump = JSON.parse(gunzipSync(Buffer.from(hex.slice(2), 'hex')).toString('utf8')) as { accounts: Record<string, DumpedAccount> }
      const state: Prestate = {}
      for (const [address, a] of Object.entries(dump.accounts)) {
        state[address as Hex] = { balance: a.balance, nonce: a.nonce, storage: a.storage, ...(a.code !== '0x' ? { code: a.code } : {}) }
      }
      return state
    },
  }
}
