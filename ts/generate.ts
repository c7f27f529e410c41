// Blocks generated in code for the bench: real signed EIP-1559 value transfers (viem signs them)
// between deterministic accounts, with the pre-state that funds the senders.
import { keccak256, numberToHex, parseTransaction, toHex, type Address, type Hex } from 'viem'
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import type { ChainConfig, RpcBlock } from './block.js'
import type { Prestate } from './state.js'

/** `independent`: n senders to n fresh receivers (no conflicts). `hot-receiver`: n senders to one
 * receiver (conflicts the lazy balance updates absorb). `chain`: each receiver sends the next
 * transaction (a true dependency chain: the worst case for parallel execution). */
export type Workload = 'independent' | 'hot-receiver' | 'chain'

export type GeneratedBlock = { name: string; block: RpcBlock; prestate: Prestate; chain: ChainConfig }

const CHAIN_ID = 1337
const GWEI = 1_000_000_000n
const TRANSFER_GAS = 21_000n

function accountAt(seed: string, i: number): PrivateKeyAccount {
  return privateKeyToAccount(keccak256(toHex(`parallel-evm bench ${seed} ${i}`)))
}

function addressAt(seed: string, i: number): Address {
  // Receivers never sign: derive an address without key generation.
  return keccak256(toHex(`parallel-evm receiver ${seed} ${i}`)).slice(0, 42) as Address
}

export async function generateBlock(workload: Workload, txCount: number): Promise<GeneratedBlock> {
  const number = 1_000_000n
  const miner = addressAt('miner', 0)
  const senders = Array.from({ length: workload === 'chain' ? txCount : txCount }, (_, i) => accountAt(workload, i))
  const receiverOf = (i: number): Address => {
    if (workload === 'hot-receiver') return addressAt(workload, 0)
    if (workload === 'chain') return i + 1 < txCount ? senders[i + 1]!.address : addressAt(workload, 0)
    return addressAt(workload, i)
  }
  const prestate: Prestate = { [miner]: { balance: '0x0', nonce: 0, storage: {} } }
  for (const s of senders) prestate[s.address] = { balance: numberToHex(10n ** 18n), nonce: 0, storage: {} }

  const transactions = await Promise.all(
    senders.map(async (sender, i) => {
      const tx = {
        type: 'eip1559' as const,
        chainId: CHAIN_ID,
        nonce: 0,
        to: receiverOf(i),
        value: 1_000_000_000_000n + BigInt(i),
        gas: TRANSFER_GAS,
        maxFeePerGas: 2n * GWEI,
        maxPriorityFeePerGas: GWEI,
      }
      const serialized = await sender.signTransaction(tx)
      const signed = parseTransaction(serialized)
      return {
        type: '0x2',
        chainId: numberToHex(CHAIN_ID),
        nonce: '0x0',
        to: tx.to,
        from: sender.address,
        value: numberToHex(tx.value),
        gas: numberToHex(tx.gas),
        maxFeePerGas: numberToHex(tx.maxFeePerGas),
        maxPriorityFeePerGas: numberToHex(tx.maxPriorityFeePerGas),
        gasPrice: numberToHex(tx.maxFeePerGas),
        input: '0x' as Hex,
        accessList: [],
        r: signed.r,
        s: signed.s,
        yParity: numberToHex(signed.yParity ?? 0),
        v: numberToHex(signed.yParity ?? 0),
        hash: keccak256(serialized),
        blockNumber: numberToHex(number),
        transactionIndex: numberToHex(i),
      }
    }),
  )
  const zero32 = `0x${'00'.repeat(32)}` as Hex
  const block: RpcBlock = {
    number: numberToHex(number),
    hash: keccak256(toHex(`parallel-evm bench block ${workload} ${txCount}`)),
    parentHash: keccak256(toHex('parallel-evm bench parent')),
    sha3Uncles: '0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347',
    miner,
    stateRoot: zero32,
    transactionsRoot: zero32,
    // Unknown without executing: generated blocks are checked against a sequential run instead.
    receiptsRoot: zero32,
    logsBloom: `0x${'00'.repeat(256)}`,
    difficulty: '0x0',
    gasLimit: numberToHex(30_000_000n),
    gasUsed: numberToHex(TRANSFER_GAS * BigInt(txCount)),
    timestamp: numberToHex(1_700_000_000n),
    extraData: '0x',
    mixHash: zero32,
    nonce: '0x0000000000000000',
    baseFeePerGas: numberToHex(7n),
    withdrawalsRoot: '0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421',
    withdrawals: [],
    blobGasUsed: '0x0',
    excessBlobGas: '0x0',
    uncles: [],
    transactions,
  }
  return { name: `${workload} ×${txCount}`, block, prestate, chain: { chainId: CHAIN_ID, hardfork: 'cancun' } }
}
