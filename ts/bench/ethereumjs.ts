// The peer: the same block through @ethereumjs/vm (pure JavaScript), end to end from TypeScript.
// Its state is built from the same prestate; each run executes every transaction of the block
// with runTx (header validation skipped: generated headers are not sealed by consensus rules)
// inside a state checkpoint that is reverted afterwards, so runs can repeat on one VM.
import { hexToBigInt, hexToBytes, type Hash, type Hex } from 'viem'
import type { ChainConfig, RpcBlock } from '../block.js'
import type { Prestate } from '../state.js'
import { requireOptional } from './optional.js'

const PURPOSE = 'The @ethereumjs/vm peer of the bench'

// The few entry points used, typed loosely: the peer packages are optional (no compile-time tie).
type EjsCommon = { setHardforkBy(args: { blockNumber: bigint; timestamp: bigint }): string; setHardfork(hf: string): void }
type EjsTx = unknown
type EjsBlock = { transactions: EjsTx[] }
type EjsStateManager = {
  putAccount(address: unknown, account: unknown): Promise<void>
  putCode(address: unknown, code: Uint8Array): Promise<void>
  putStorage(address: unknown, key: Uint8Array, value: Uint8Array): Promise<void>
  checkpoint(): Promise<void>
  revert(): Promise<void>
}
type EjsVM = { stateManager: EjsStateManager }
type RunTxResult = { totalGasSpent: bigint; execResult: { exceptionError?: unknown } }

type Packages = {
  common: {
    Common: new (opts: { chain: unknown; hardfork?: string }) => EjsCommon
    Mainnet: { chainId: bigint | number }
    createCustomCommon(partial: { chainId: number }, base: unknown, opts: { hardfork?: string }): EjsCommon
  }
  block: { createBlockFromRPC(rpc: unknown, uncles: unknown[], opts: { common: EjsCommon; setHardfork?: boolean; skipConsensusFormatValidation?: boolean }): EjsBlock }
  vm: {
    createVM(opts: { common: EjsCommon; blockchain?: unknown }): Promise<EjsVM>
    runTx(vm: EjsVM, opts: { tx: EjsTx; block: EjsBlock; skipBlockGasLimitValidation: boolean; skipHardForkValidation: boolean; blockGasUsed: bigint }): Promise<RunTxResult>
  }
  util: { createAccount(data: { nonce: bigint; balance: bigint }): unknown; createAddressFromString(s: string): unknown }
}

/** Loads the peer's packages: fails with MissingDependencyError (before any work) when one is missing. */
export function peerPackages(): Packages {
  return {
    common: requireOptional('@ethereumjs/common', PURPOSE),
    block: requireOptional('@ethereumjs/block', PURPOSE),
    vm: requireOptional('@ethereumjs/vm', PURPOSE),
    util: requireOptional('@ethereumjs/util', PURPOSE),
  }
}

export type PeerRun = { gasUsed: bigint; failedTxs: number }

const quantity = (v: unknown): bigint => (v === undefined ? 0n : typeof v === 'bigint' ? v : typeof v === 'number' ? BigInt(v) : hexToBigInt(v as Hex))
const word = (hex: string) => hexToBytes(hex as Hex, { size: 32 })

/** A block and its pre-state loaded into @ethereumjs/vm, ready to run any number of times. */
export class EthereumjsPeer {
  private constructor(
    private readonly vm: EjsVM,
    private readonly block: EjsBlock,
    private readonly runTx: Packages['vm']['runTx'],
  ) {}

  static async create(args: { block: RpcBlock; prestate: Prestate; chain?: ChainConfig; blockHashes?: Record<string, Hash> }): Promise<EthereumjsPeer> {
    const p = peerPackages()
    const chainId = args.chain?.chainId ?? 1
    const hardfork = args.chain?.hardfork
    const common =
      chainId === Number(p.common.Mainnet.chainId)
        ? new p.common.Common({ chain: p.common.Mainnet, ...(hardfork ? { hardfork } : {}) })
        : p.common.createCustomCommon({ chainId }, p.common.Mainnet, { hardfork })
    // Without a fixed fork, the fork follows the block (mainnet's schedule), as in the engine.
    if (!hardfork) common.setHardforkBy({ blockNumber: quantity(args.block.number), timestamp: quantity(args.block.timestamp) })
    const block = p.block.createBlockFromRPC(args.block, [], { common, skipConsensusFormatValidation: true })
    const hashes = args.blockHashes ?? {}
    // BLOCKHASH reads go to the fixture's block hashes, like the engine's.
    const blockchain = {
      async getBlock(n: number | bigint) {
        const h = hashes[String(n)] ?? (BigInt(n) === quantity(args.block.number) - 1n ? args.block.parentHash : undefined)
        if (!h) throw new Error(`no hash for block ${n}`)
        return { hash: () => hexToBytes(h) }
      },
      async putBlock() {},
      shallowCopy() {
        return blockchain
      },
    }
    const vm = await p.vm.createVM({ common, blockchain })
    const sm = vm.stateManager
    for (const [address, account] of Object.entries(args.prestate)) {
      const a = p.util.createAddressFromString(address)
      await sm.putAccount(a, p.util.createAccount({ nonce: quantity(account.nonce), balance: quantity(account.balance) }))
      if (account.code && account.code !== '0x') await sm.putCode(a, hexToBytes(account.code))
      for (const [slot, value] of Object.entries(account.storage ?? {})) await sm.putStorage(a, word(slot), word(value))
    }
    return new EthereumjsPeer(vm, block, p.vm.runTx)
  }

  get txCount(): number {
    return this.block.transactions.length
  }

  /** Runs every transaction of the block on the pre-state; the state is restored afterwards. */
  async run(): Promise<PeerRun> {
    const sm = this.vm.stateManager
    await sm.checkpoint()
    let gasUsed = 0n
    let failedTxs = 0
    try {
      for (const tx of this.block.transactions) {
        const r = await this.runTx(this.vm, { tx, block: this.block, skipBlockGasLimitValidation: true, skipHardForkValidation: true, blockGasUsed: gasUsed })
        gasUsed += r.totalGasSpent
        if (r.execResult.exceptionError) failedTxs++
      }
    } finally {
      await sm.revert()
    }
    return { gasUsed, failedTxs }
  }
}
