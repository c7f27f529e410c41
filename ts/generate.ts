// Blocks generated in code for the bench and tests: real signed transactions (viem signs them)
// from deterministic keys, with the pre-state that funds the senders. The contract workloads
// (ERC20, Uniswap, mixed) build on the helpers here (ts/bench/workloads.ts).
import { keccak256, numberToHex, parseTransaction, toHex, type Address, type Hex } from 'viem'
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import type { ChainConfig, RpcBlock } from './block.js'
import type { Prestate } from './state.js'

/** `independent`: n senders to n fresh receivers (no conflicts). `hot-receiver`: n senders to one
 * receiver (conflicts the lazy balance updates absorb). `chain`: each receiver sends the next
 * transaction (a true dependency chain: the worst case for parallel execution). */
export type Workload = 'independent' | 'hot-receiver' | 'chain'

export type GeneratedBlock = { name: string; block: RpcBlock; prestate: Prestate; chain: ChainConfig }

/** Chain rules of every generated block. */
export const GENERATED_CHAIN = { chainId: 1337, hardfork: 'cancun' } as const satisfies ChainConfig
export const GENERATED_BLOCK_NUMBER = 1_000_000n
const GWEI = 1_000_000_000n
const TRANSFER_GAS = 21_000n
const EMPTY_TRIE = '0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421'
const ZERO32 = `0x${'00'.repeat(32)}` as Hex

/** A signing account, deterministic from a label and an index. */
export function keyAt(label: string, i: number): PrivateKeyAccount {
  return privateKeyToAccount(keccak256(toHex(`parallel-evm bench ${label} ${i}`)))
}

/** An address nobody signs for (receivers), without key generation. */
export function addressAt(label: string, i: number): Address {
  return keccak256(toHex(`parallel-evm receiver ${label} ${i}`)).slice(0, 42) as Address
}

/** One transaction to sign: a call (`to`) or a contract creation (`to: null`). */
export type TxRequest = { from: PrivateKeyAccount; nonce: number; to: Address | null; value?: bigint; data?: Hex; gas: bigint }

/** Signs EIP-1559 transactions and returns them as a JSON-RPC block's transaction objects. */
export async function signTransactions(requests: readonly TxRequest[], blockNumber = GENERATED_BLOCK_NUMBER): Promise<Record<string, unknown>[]> {
  return Promise.all(
    requests.map(async (r, i) => {
      const tx = {
        type: 'eip1559' as const,
        chainId: GENERATED_CHAIN.chainId,
        nonce: r.nonce,
        ...(r.to === null ? {} : { to: r.to }),
        value: r.value ?? 0n,
        data: r.data ?? '0x',
        gas: r.gas,
        maxFeePerGas: 2n * GWEI,
        maxPriorityFeePerGas: GWEI,
      }
      const serialized = await r.from.signTransaction(tx)
      const signed = parseTransaction(serialized)
      return {
        type: '0x2',
        chainId: numberToHex(tx.chainId),
        nonce: numberToHex(tx.nonce),
        to: r.to,
        from: r.from.address,
        value: numberToHex(tx.value),
        gas: numberToHex(tx.gas),
        maxFeePerGas: numberToHex(tx.maxFeePerGas),
        maxPriorityFeePerGas: numberToHex(tx.maxPriorityFeePerGas),
        gasPrice: numberToHex(tx.maxFeePerGas),
        input: tx.data,
        accessList: [],
        r: signed.r,
        s: signed.s,
        yParity: numberToHex(signed.yParity ?? 0),
        v: numberToHex(signed.yParity ?? 0),
        hash: keccak256(serialized),
        blockNumber: numberToHex(blockNumber),
        transactionIndex: numberToHex(i),
      }
    }),
  )
}

/**
 * A JSON-RPC block around signed transactions. `gasUsed`, `receiptsRoot` and `logsBloom` are what
 * the caller knows (transfers: exact); contract workloads fill them from a sequential run
 * (`sealBlock`), as a block producer would.
 */
export function assembleBlock(args: { id: string; transactions: Record<string, unknown>[]; gasUsed?: bigint; number?: bigint; timestamp?: bigint }): RpcBlock {
  const number = args.number ?? GENERATED_BLOCK_NUMBER
  const gasLimit = args.transactions.reduce((sum, t) => sum + BigInt(t.gas as Hex), 0n)
  return {
    number: numberToHex(number),
    hash: keccak256(toHex(`parallel-evm bench block ${args.id}`)),
    parentHash: keccak256(toHex(`parallel-evm bench parent ${number}`)),
    sha3Uncles: '0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347',
    miner: addressAt('miner', 0),
    stateRoot: ZERO32,
    transactionsRoot: ZERO32,
    receiptsRoot: ZERO32,
    logsBloom: `0x${'00'.repeat(256)}`,
    difficulty: '0x0',
    // Gigagas-style blocks may exceed mainnet's limit: the limit is what the block needs.
    gasLimit: numberToHex(gasLimit > 30_000_000n ? gasLimit : 30_000_000n),
    gasUsed: numberToHex(args.gasUsed ?? 0n),
    timestamp: numberToHex(args.timestamp ?? 1_700_000_000n),
    extraData: '0x',
    mixHash: ZERO32,
    nonce: '0x0000000000000000',
    baseFeePerGas: numberToHex(7n),
    withdrawalsRoot: EMPTY_TRIE,
    withdrawals: [],
    blobGasUsed: '0x0',
    excessBlobGas: '0x0',
    uncles: [],
    transactions: args.transactions,
  }
}

/** Ether in wei as a prestate balance. */
export const ether = (n: bigint) => numberToHex(n * 10n ** 18n)

/** Signed value transfers; `seed` varies the keys (default: the workload's fixed keys). */
export async function generateBlock(workload: Workload, txCount: number, seed?: number): Promise<GeneratedBlock> {
  const label = seed === undefined ? workload : `${workload}#${seed}`
  const senders = Array.from({ length: txCount }, (_, i) => keyAt(label, i))
  const receiverOf = (i: number): Address => {
    if (workload === 'hot-receiver') return addressAt(label, 0)
    if (workload === 'chain') return i + 1 < txCount ? senders[i + 1]!.address : addressAt(label, 0)
    return addressAt(label, i)
  }
  const prestate: Prestate = { [addressAt('miner', 0)]: { balance: '0x0', nonce: 0, storage: {} } }
  for (const s of senders) prestate[s.address] = { balance: ether(1n), nonce: 0, storage: {} }
  const transactions = await signTransactions(senders.map((from, i) => ({ from, nonce: 0, to: receiverOf(i), value: 1_000_000_000_000n + BigInt(i), gas: TRANSFER_GAS })))
  const block = assembleBlock({ id: `${label} ${txCount}`, transactions, gasUsed: TRANSFER_GAS * BigInt(txCount) })
  return { name: `${workload} ×${txCount}`, block, prestate, chain: { ...GENERATED_CHAIN } }
}
