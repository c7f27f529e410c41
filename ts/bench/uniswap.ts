// Uniswap V2 swaps across many independent pairs, from the compiled artifacts of @uniswap/v2-core.
// A setup block (signed transactions, executed sequentially by the engine) deploys the tokens and
// the factory, creates and funds each pair, and transfers each swap's input to its pair; its
// post-state is the bench block's pre-state. Each bench transaction then calls
// `UniswapV2Pair.swap` on its own pair (the router's transfer-then-swap, split across the blocks).
import { encodeDeployData, encodeFunctionData, encodePacked, getContractAddress, keccak256, type Abi, type Address, type Hex } from 'viem'
import { assembleBlock, ether, GENERATED_BLOCK_NUMBER, GENERATED_CHAIN, keyAt, signTransactions, type GeneratedBlock, type TxRequest } from '../generate.js'
import { applyDiff, sealBlock } from './seal.js'
import { requireOptional } from './optional.js'

type Artifact = { abi: Abi; bytecode: string }

function artifact(name: string): Artifact {
  const a = requireOptional<Artifact>(`@uniswap/v2-core/build/${name}.json`, 'The Uniswap V2 workload', '@uniswap/v2-core')
  return { abi: a.abi, bytecode: a.bytecode.startsWith('0x') ? a.bytecode : `0x${a.bytecode}` }
}

const RESERVE = 10n ** 24n
const SWAP_IN = 10n ** 18n

/** What the pair pays out for `amountIn` (UniswapV2Library.getAmountOut: 0.3% fee). */
export function amountOut(amountIn: bigint, reserveIn: bigint, reserveOut: bigint): bigint {
  const withFee = amountIn * 997n
  return (withFee * reserveOut) / (reserveIn * 1000n + withFee)
}

/** Token pairs (i, j) over the fewest tokens that give `pairs` distinct pairs. */
function tokenPairs(pairs: number): { tokens: number; pairs: [number, number][] } {
  let tokens = 2
  while ((tokens * (tokens - 1)) / 2 < pairs) tokens++
  const out: [number, number][] = []
  for (let i = 0; i < tokens && out.length < pairs; i++) for (let j = i + 1; j < tokens && out.length < pairs; j++) out.push([i, j])
  return { tokens, pairs: out }
}

/** The setup block and the bench block: `swaps` swaps, one per pair. Also returns the setup block. */
export async function uniswapBlocks(swaps: number, seed: number): Promise<{ setup: GeneratedBlock; bench: GeneratedBlock; pairs: Address[] }> {
  const label = `uniswap#${seed}`
  const [erc20, factoryArtifact, pairArtifact] = [artifact('ERC20'), artifact('UniswapV2Factory'), artifact('UniswapV2Pair')]
  const deployer = keyAt(`${label} deployer`, 0)
  let nonce = 0
  const setup: TxRequest[] = []
  const send = (to: Address | null, data: Hex, gas: bigint) => {
    setup.push({ from: deployer, nonce: nonce++, to, data, gas })
    return getContractAddress({ from: deployer.address, nonce: BigInt(nonce - 1) })
  }

  const layout = tokenPairs(swaps)
  const tokens = Array.from({ length: layout.tokens }, () => send(null, encodeDeployData({ abi: erc20.abi, bytecode: erc20.bytecode as Hex, args: [RESERVE * BigInt(2 * swaps + 2)] }), 1_500_000n))
  const factory = send(null, encodeDeployData({ abi: factoryArtifact.abi, bytecode: factoryArtifact.bytecode as Hex, args: [deployer.address] }), 5_000_000n)
  const pairInitCodeHash = keccak256(pairArtifact.bytecode as Hex)
  const transfer = (to: Address, amount: bigint) => encodeFunctionData({ abi: erc20.abi, functionName: 'transfer', args: [to, amount] })

  const pairs: { address: Address; token0: Address; token1: Address }[] = []
  for (const [i, j] of layout.pairs) {
    const [token0, token1] = [tokens[i]!, tokens[j]!].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)) as [Address, Address]
    const address = getContractAddress({ opcode: 'CREATE2', from: factory, salt: keccak256(encodePacked(['address', 'address'], [token0, token1])), bytecodeHash: pairInitCodeHash })
    send(factory, encodeFunctionData({ abi: factoryArtifact.abi, functionName: 'createPair', args: [token0, token1] }), 3_000_000n)
    send(token0, transfer(address, RESERVE), 100_000n)
    send(token1, transfer(address, RESERVE), 100_000n)
    send(address, encodeFunctionData({ abi: pairArtifact.abi, functionName: 'mint', args: [deployer.address] }), 300_000n)
    // The swap's input, sent ahead: the pair sees balance - reserve as the amount in.
    send(token0, transfer(address, SWAP_IN), 100_000n)
    pairs.push({ address, token0, token1 })
  }

  const setupBlock: GeneratedBlock = {
    name: `uniswap setup (${swaps} pairs)`,
    block: assembleBlock({
      id: `${label} setup ${swaps}`,
      transactions: await signTransactions(setup, GENERATED_BLOCK_NUMBER - 1n),
      number: GENERATED_BLOCK_NUMBER - 1n,
      timestamp: 1_700_000_000n - 12n,
    }),
    prestate: { [deployer.address]: { balance: ether(1_000_000n), nonce: 0, storage: {} } },
    chain: { ...GENERATED_CHAIN },
  }
  const afterSetup = applyDiff(setupBlock.prestate, (await sealBlock(setupBlock)).stateDiff)

  const out = amountOut(SWAP_IN, RESERVE, RESERVE)
  const requests: TxRequest[] = pairs.map((p, i) => {
    const from = keyAt(`${label} swapper`, i)
    afterSetup[from.address] = { balance: ether(1n), nonce: 0, storage: {} }
    // token0 went in, so token1 comes out.
    return { from, nonce: 0, to: p.address, data: encodeFunctionData({ abi: pairArtifact.abi, functionName: 'swap', args: [0n, out, from.address, '0x'] }), gas: 200_000n }
  })
  const bench: GeneratedBlock = {
    name: `uniswap ×${swaps} (${swaps} pairs)`,
    block: assembleBlock({ id: `${label} ${swaps}`, transactions: await signTransactions(requests) }),
    prestate: afterSetup,
    chain: { ...GENERATED_CHAIN },
  }
  await sealBlock(bench)
  return { setup: setupBlock, bench, pairs: pairs.map((p) => p.address) }
}
