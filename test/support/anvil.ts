// A real anvil node for tests: start/stop on a free 127.0.0.1 port, manual mining, contract
// deployment through anvil's unlocked dev accounts, and test contracts (an OpenZeppelin ERC20
// compiled with solc at test time, Uniswap V2 from @uniswap/v2-core's compiled artifacts).
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { createPublicClient, encodeDeployData, encodeFunctionData, http, type Abi, type Address, type Hash, type Hex, type PublicClient } from 'viem'

export type AnvilOptions = {
  /** Must match the ChainConfig the blocks are executed with. */
  hardfork?: string
  chainId?: number
  /** Dev accounts (funded, unlocked). */
  accounts?: number
  /** Mine only on `mine()` (default true). */
  manualMining?: boolean
}

export type Anvil = {
  url: string
  port: number
  chainId: number
  hardfork: string
  client: PublicClient
  /** The unlocked, funded dev accounts. */
  accounts: Address[]
  rpc<T = unknown>(method: string, params?: unknown[]): Promise<T>
  /** Mines one block with every pending transaction; returns its number. */
  mine(): Promise<bigint>
  /** Queues a transaction from an unlocked account (explicit gas: no estimation against pending state). */
  send(tx: { from: Address; to?: Address; data?: Hex; value?: bigint; gas?: bigint }): Promise<Hash>
  /** Deploys a contract in its own block; returns its address. */
  deploy(from: Address, abi: Abi, bytecode: Hex, args?: readonly unknown[]): Promise<Address>
  /** Queues a contract call. */
  call(from: Address, to: Address, abi: Abi, functionName: string, args: readonly unknown[], gas?: bigint): Promise<Hash>
  stop(): Promise<void>
}

/** The anvil binary shipped by @foundry-rs/anvil (its per-platform package). */
export function anvilBinary(): string {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch
  const pkg = `@foundry-rs/anvil-${process.platform}-${arch}`
  const dir = dirname(require.resolve(`${pkg}/package.json`))
  const bin = join(dir, 'bin', process.platform === 'win32' ? 'anvil.exe' : 'anvil')
  if (!existsSync(bin)) throw new Error(`anvil binary missing at ${bin} (npm install @foundry-rs/anvil)`)
  return bin
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

async function rawRpc<T>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) })
  const body = (await res.json()) as { result?: T; error?: { message: string } }
  if (body.error) throw new Error(`${method}: ${body.error.message}`)
  return body.result as T
}

export async function startAnvil(options: AnvilOptions = {}): Promise<Anvil> {
  const hardfork = options.hardfork ?? 'cancun'
  const chainId = options.chainId ?? 31337
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const child: ChildProcess = spawn(
    anvilBinary(),
    ['--host', '127.0.0.1', '--port', String(port), '--hardfork', hardfork, '--chain-id', String(chainId), '--accounts', String(options.accounts ?? 20), '--silent'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let stderr = ''
  child.stderr?.on('data', (d) => (stderr += String(d)))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  // Ready when it answers.
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      await rawRpc(url, 'eth_chainId')
      break
    } catch {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill()
        throw new Error(`anvil did not start on ${url}: ${stderr}`)
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  const rpc = <T>(method: string, params: unknown[] = []) => rawRpc<T>(url, method, params)
  if (options.manualMining ?? true) await rpc('evm_setAutomine', [false])
  const accounts = (await rpc<Address[]>('eth_accounts')).map((a) => a.toLowerCase() as Address)
  const client = createPublicClient({ transport: http(url) })

  const anvil: Anvil = {
    url,
    port,
    chainId,
    hardfork,
    client,
    accounts,
    rpc,
    async mine() {
      await rpc('evm_mine')
      return BigInt(await rpc<Hex>('eth_blockNumber'))
    },
    send(tx) {
      return rpc<Hash>('eth_sendTransaction', [
        {
          from: tx.from,
          ...(tx.to ? { to: tx.to } : {}),
          ...(tx.data ? { data: tx.data } : {}),
          value: `0x${(tx.value ?? 0n).toString(16)}`,
          gas: `0x${(tx.gas ?? 500_000n).toString(16)}`,
        },
      ])
    },
    async deploy(from, abi, bytecode, args = []) {
      const hash = await anvil.send({ from, data: encodeDeployData({ abi, bytecode, args }), gas: 8_000_000n })
      await anvil.mine()
      const receipt = await rpc<{ status: Hex; contractAddress: Address }>('eth_getTransactionReceipt', [hash])
      if (receipt.status !== '0x1') throw new Error('deployment reverted')
      return receipt.contractAddress.toLowerCase() as Address
    },
    call(from, to, abi, functionName, args, gas = 300_000n) {
      return anvil.send({ from, to, data: encodeFunctionData({ abi, functionName, args } as never), gas })
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM')
        await exited
      }
    },
  }
  return anvil
}

export type Artifact = { abi: Abi; bytecode: Hex }

/** Uniswap V2 factory and pair, from the compiled artifacts in @uniswap/v2-core. */
export function uniswapV2(): { factory: Artifact; pair: Artifact } {
  const load = (name: string): Artifact => {
    const json = JSON.parse(readFileSync(require.resolve(`@uniswap/v2-core/build/${name}.json`), 'utf8')) as { abi: Abi; bytecode: string }
    return { abi: json.abi, bytecode: (json.bytecode.startsWith('0x') ? json.bytecode : `0x${json.bytecode}`) as Hex }
  }
  return { factory: load('UniswapV2Factory'), pair: load('UniswapV2Pair') }
}

const TOKEN_SOURCE = `// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
contract TestToken is ERC20 {
    constructor(string memory name_, string memory symbol_, uint256 supply) ERC20(name_, symbol_) {
        _mint(msg.sender, supply);
    }
}
`

let erc20Cache: Artifact | undefined

/** OpenZeppelin's ERC20 (minting its supply to the deployer), compiled with the solc npm package. */
export function erc20(evmVersion = 'cancun'): Artifact {
  if (erc20Cache) return erc20Cache
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const solc = require('solc') as { compile(input: string, opts: { import(path: string): { contents?: string; error?: string } }): string }
  const input = {
    language: 'Solidity',
    sources: { 'TestToken.sol': { content: TOKEN_SOURCE } },
    settings: { evmVersion, optimizer: { enabled: true, runs: 200 }, outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } } },
  }
  const out = JSON.parse(
    solc.compile(JSON.stringify(input), {
      import(path) {
        try {
          return { contents: readFileSync(require.resolve(path), 'utf8') }
        } catch (e) {
          return { error: (e as Error).message }
        }
      },
    }),
  ) as { errors?: { severity: string; formattedMessage: string }[]; contracts: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string } } }>> }
  const errors = (out.errors ?? []).filter((e) => e.severity === 'error')
  if (errors.length > 0) throw new Error(errors.map((e) => e.formattedMessage).join('\n'))
  const c = out.contracts['TestToken.sol']!['TestToken']!
  erc20Cache = { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` }
  return erc20Cache
}
