// Contended DEX blocks mined on a dev node (anvil), shaped like today's mainnet blocks: many
// senders swapping through the real Uniswap V2 Router02 on a few hot pools, multi-hop swaps,
// WETH deposits and withdrawals, searcher back-runs (a bot selling on one exchange and buying
// back on its fork in one transaction), and independent ERC-20 and ETH transfers. `contention`
// is the share of transactions that touch the hot pools. Transactions go through the node's
// unlocked dev accounts (it signs them), are sent in JSON-RPC batches with automine off, and
// each block is mined with `evm_mine`; every transaction must land in its block.
import { createTestClient, encodeDeployData, encodeFunctionData, getContractAddress, http, publicActions, type Abi, type Address, type Hash, type Hex } from 'viem'
import { InvalidInputError, RpcResponseError } from '../errors.js'
import { CHAIN_TOKEN_SOURCE, seededRandom } from './anvil-chain.js'
import { requireOptional } from './optional.js'
import { compileContract } from './solidity.js'
import { amountOut } from './uniswap.js'

// A searcher's contract: sells on one pair, buys back on another, keeps the difference, and
// reverts when less than `minBack` came back (an unprofitable back-run).
const BOT_SOURCE = `// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

interface IPair {
    function getReserves() external view returns (uint112, uint112, uint32);
    function token0() external view returns (address);
    function token1() external view returns (address);
    function swap(uint256 amount0Out, uint256 amount1Out, address to, bytes calldata data) external;
}

interface IToken {
    function transfer(address to, uint256 amount) external returns (bool);
}

contract BackrunBot {
    function backrun(address pairIn, address pairOut, address tokenIn, uint256 amountIn, uint256 minBack) external {
        (uint256 mid, address tokenMid) = sell(pairIn, tokenIn, amountIn);
        (uint256 back, ) = sell(pairOut, tokenMid, mid);
        require(back >= minBack, "unprofitable");
    }

    function sell(address pair, address tokenIn, uint256 amountIn) internal returns (uint256 out, address tokenOut) {
        (uint256 r0, uint256 r1, ) = IPair(pair).getReserves();
        address t0 = IPair(pair).token0();
        bool zeroIn = tokenIn == t0;
        (uint256 rIn, uint256 rOut) = zeroIn ? (r0, r1) : (r1, r0);
        uint256 withFee = amountIn * 997;
        out = (withFee * rOut) / (rIn * 1000 + withFee);
        IToken(tokenIn).transfer(pair, amountIn);
        IPair(pair).swap(zeroIn ? 0 : out, zeroIn ? out : 0, address(this), "");
        tokenOut = zeroIn ? IPair(pair).token1() : t0;
    }
}
`

export type DexTxKind = 'swap' | 'multihop' | 'backrun' | 'transfer' | 'eth' | 'weth' | 'coldSwap'

export type MineDexBlocksParameters = {
  rpcUrl: string
  /** Contended blocks to mine (after the setup blocks). Default 3. */
  blocks?: number
  /** Transactions per block. Default 200. */
  txsPerBlock?: number
  /** Share of transactions that touch the hot pools (router swaps, multi-hop swaps, back-runs), 0 to 1. Default 0.7. */
  contention?: number
  /** Senders of the swaps and transfers (the node needs this many unlocked accounts, plus 4). Default `txsPerBlock`. */
  users?: number
  seed?: number
  /** Called after each contended block. */
  onBlock?: (block: MinedDexBlock) => void
}

export type MinedDexBlock = {
  number: bigint
  hash: Hash
  transactions: number
  reverted: number
  /** Reverted transactions of each kind (swaps whose minimum the block's earlier swaps broke, unprofitable back-runs). */
  revertedKinds: Partial<Record<DexTxKind, number>>
  /** Transactions that swap on a hot pool. */
  hot: number
  kinds: Record<DexTxKind, number>
  gasUsed: bigint
}

export type DexPool = { address: Address; exchange: 'a' | 'b'; tokens: [Address, Address]; hot: boolean }

export type MineDexBlocksReturnType = {
  blocks: MinedDexBlock[]
  pools: DexPool[]
  weth: Address
  routers: [Address, Address]
  bot: Address
  tokens: Address[]
  contention: number
}

type Artifact = { abi: Abi; bytecode: Hex }
type Queued = { from: Address; to?: Address; data: Hex; value: bigint; gas: bigint; tip: bigint; nonce: number; hot: boolean; kind?: DexTxKind }

const E18 = 10n ** 18n
const GWEI = 10n ** 9n
const MAX = 2n ** 256n - 1n
const DEADLINE = 2n ** 32n
const GAS_LIMIT = 150_000_000n
// Setup transactions per block: their gas limits must fit in one block.
const SETUP_GAS = 140_000_000n
const SEARCHERS = 3

function artifact(pkg: 'v2-core' | 'v2-periphery', name: string): Artifact {
  const a = requireOptional<{ abi: Abi; bytecode: string }>(`@uniswap/${pkg}/build/${name}.json`, 'The contended DEX blocks', `@uniswap/${pkg}`)
  return { abi: a.abi, bytecode: (a.bytecode.startsWith('0x') ? a.bytecode : `0x${a.bytecode}`) as Hex }
}

/** The seeded generator of `anvil-chain`, with trade sizes. */
function generator(seed: number) {
  const { random, pick } = seededRandom(seed)
  return {
    random,
    pick,
    /** Log-uniform in [lo, hi] ether, as wei: many small trades, a few large ones. */
    size: (lo: number, hi: number) => BigInt(Math.round(lo * (hi / lo) ** random() * 1e6)) * 10n ** 12n,
  }
}

/** Mines the setup and the contended blocks; the node must have enough unlocked, funded dev accounts (anvil `--accounts`). */
export async function mineDexBlocks(params: MineDexBlocksParameters): Promise<MineDexBlocksReturnType> {
  const txsPerBlock = params.txsPerBlock ?? 200
  const contention = params.contention ?? 0.7
  if (!(contention >= 0 && contention <= 1)) throw new InvalidInputError(`contention must be between 0 and 1, got ${contention}`)
  // Batches of a few hundred requests per HTTP call: one request at a time took ~20 ms per transaction.
  const client = createTestClient({ mode: 'anvil', transport: http(params.rpcUrl, { batch: { batchSize: 500, wait: 0 }, timeout: 120_000 }) }).extend(publicActions)
  // Plain JSON-RPC for the methods outside viem's test-client schema (same transport, same batches).
  const request = <T>(method: string, args: unknown[] = []) => (client.request as unknown as (a: { method: string; params: unknown[] }) => Promise<T>)({ method, params: args })
  const accounts = (await request<Address[]>('eth_accounts')).map((a) => a.toLowerCase() as Address)
  const userCount = params.users ?? txsPerBlock
  if (accounts.length < userCount + SEARCHERS + 1)
    throw new InvalidInputError(`the node has ${accounts.length} unlocked accounts; ${userCount} users need ${userCount + SEARCHERS + 1} (anvil --accounts)`)
  const [deployer, ...rest] = accounts as [Address, ...Address[]]
  const searchers = rest.slice(0, SEARCHERS)
  const users = rest.slice(SEARCHERS, SEARCHERS + userCount)

  await client.setAutomine(false)
  await client.setBlockGasLimit({ gasLimit: GAS_LIMIT })
  // The pools' liquidity: more ether than a dev account holds.
  await client.setBalance({ address: deployer, value: 10_000_000n * E18 })

  // Nonces are taken when a transaction is queued, so a batch can carry several of one sender.
  const counts = await Promise.all(accounts.map((address) => client.getTransactionCount({ address, blockTag: 'pending' })))
  const nonces = new Map<Address, number>(accounts.map((a, i) => [a, counts[i]!]))
  let queued: Queued[] = []
  const send = (tx: Omit<Queued, 'value' | 'tip' | 'hot' | 'nonce'> & { value?: bigint; tip?: bigint; hot?: boolean }) => {
    const nonce = nonces.get(tx.from)!
    nonces.set(tx.from, nonce + 1)
    queued.push({ value: 0n, tip: GWEI, hot: false, nonce, ...tx })
    return nonce
  }
  const call = (from: Address, to: Address, abi: Abi, functionName: string, args: readonly unknown[], gas: bigint, extra: Partial<Queued> = {}) =>
    send({ from, to, data: encodeFunctionData({ abi, functionName, args } as never), gas, ...extra })
  /** Sends what is queued (one batch) and mines it; returns the block with every transaction checked in. */
  const mine = async (): Promise<{ number: bigint; hash: Hash; sent: Queued[]; hashes: Hash[]; gasUsed: bigint }> => {
    const sent = queued
    queued = []
    const hashes = await Promise.all(
      sent.map((tx) =>
        request<Hash>('eth_sendTransaction', [
          {
            from: tx.from,
            ...(tx.to ? { to: tx.to } : {}),
            data: tx.data,
            value: `0x${tx.value.toString(16)}`,
            gas: `0x${tx.gas.toString(16)}`,
            nonce: `0x${tx.nonce.toString(16)}`,
            maxFeePerGas: `0x${(200n * GWEI).toString(16)}`,
            maxPriorityFeePerGas: `0x${tx.tip.toString(16)}`,
          },
        ]),
      ),
    )
    await client.mine({ blocks: 1 })
    const block = await client.getBlock({ blockTag: 'latest' })
    const included = new Set(block.transactions)
    const missing = hashes.filter((h) => !included.has(h))
    if (missing.length > 0 || block.transactions.length !== hashes.length) {
      throw new RpcResponseError('evm_mine', `block ${block.number} holds ${block.transactions.length} transactions, ${hashes.length} were sent (${missing.length} left out)`)
    }
    return { number: block.number, hash: block.hash, sent, hashes, gasUsed: block.gasUsed }
  }
  const receiptsOf = (number: bigint) => request<{ status: Hex; transactionHash: Hash }[]>('eth_getBlockReceipts', [`0x${number.toString(16)}`])
  const mineSetup = async () => {
    // Split so that every block's gas limits fit.
    const all = queued
    queued = []
    for (let i = 0; i < all.length; ) {
      let gas = 0n
      let j = i
      while (j < all.length && gas + all[j]!.gas <= SETUP_GAS) gas += all[j++]!.gas
      queued = all.slice(i, j)
      const b = await mine()
      const failed = (await receiptsOf(b.number)).filter((r) => r.status !== '0x1')
      if (failed.length > 0) throw new RpcResponseError('eth_getBlockReceipts', `setup block ${b.number}: ${failed.length} transactions reverted (first ${failed[0]!.transactionHash})`)
      i = j
    }
  }

  // Contracts: WETH9, two exchanges (Uniswap V2 and a fork of it: a factory and a Router02
  // each), six tokens, the searchers' bot. Addresses follow from the deployer's nonces.
  const [wethArt, factoryArt, pairArt, routerArt] = [
    artifact('v2-periphery', 'WETH9'),
    artifact('v2-core', 'UniswapV2Factory'),
    artifact('v2-core', 'UniswapV2Pair'),
    artifact('v2-periphery', 'UniswapV2Router02'),
  ]
  const token = compileContract('ChainToken.sol', CHAIN_TOKEN_SOURCE, 'ChainToken')
  const botArt = compileContract('BackrunBot.sol', BOT_SOURCE, 'BackrunBot')
  const deployed: Address[] = []
  const deploy = (data: Hex, gas: bigint) => {
    const nonce = send({ from: deployer, data, gas })
    const address = getContractAddress({ from: deployer, nonce: BigInt(nonce) }).toLowerCase() as Address
    deployed.push(address)
    return address
  }
  const weth = deploy(wethArt.bytecode, 1_000_000n)
  const factories = [
    deploy(encodeDeployData({ abi: factoryArt.abi, bytecode: factoryArt.bytecode, args: [deployer] }), 5_000_000n),
    deploy(encodeDeployData({ abi: factoryArt.abi, bytecode: factoryArt.bytecode, args: [deployer] }), 5_000_000n),
  ] as const
  const routers = [
    deploy(encodeDeployData({ abi: routerArt.abi, bytecode: routerArt.bytecode, args: [factories[0], weth] }), 6_000_000n),
    deploy(encodeDeployData({ abi: routerArt.abi, bytecode: routerArt.bytecode, args: [factories[1], weth] }), 6_000_000n),
  ] as [Address, Address]
  const tokens: Address[] = []
  for (let i = 0; i < 6; i++) tokens.push(deploy(encodeDeployData({ abi: token.abi, bytecode: token.bytecode, args: [10n ** 36n] }), 2_000_000n))
  const bot = deploy(botArt.bytecode, 1_000_000n)
  await mineSetup()
  for (const address of deployed) {
    const code = await client.getCode({ address })
    if (!code || code === '0x') throw new RpcResponseError('eth_getCode', `no code at ${address} after the setup`)
  }

  // Pools: hot ones (priced like ETH/USD pairs, deep) and cold ones (one pair of tokens each).
  const [T0, T1, T2, T3, T4, T5] = tokens as [Address, Address, Address, Address, Address, Address]
  const price = new Map<Address, bigint>([
    [weth, 1n],
    [T0, 3000n],
    [T1, 3000n],
    [T2, 1000n],
    [T3, 1000n],
    [T4, 1000n],
    [T5, 1000n],
  ])
  const poolSpecs: { exchange: 0 | 1; a: Address; b: Address; ether: bigint; hot: boolean }[] = [
    { exchange: 0, a: weth, b: T0, ether: 2000n, hot: true },
    { exchange: 0, a: weth, b: T1, ether: 2000n, hot: true },
    { exchange: 0, a: T0, b: T1, ether: 2000n, hot: true },
    { exchange: 1, a: weth, b: T0, ether: 1000n, hot: true },
    { exchange: 0, a: weth, b: T2, ether: 300n, hot: false },
    { exchange: 0, a: weth, b: T3, ether: 300n, hot: false },
    { exchange: 0, a: weth, b: T4, ether: 300n, hot: false },
    { exchange: 0, a: weth, b: T5, ether: 300n, hot: false },
    { exchange: 0, a: T2, b: T3, ether: 300n, hot: false },
    { exchange: 0, a: T4, b: T5, ether: 300n, hot: false },
  ]
  for (const r of routers) for (const t of tokens) call(deployer, t, token.abi, 'approve', [r, MAX], 100_000n)
  for (const p of poolSpecs) {
    const router = routers[p.exchange]
    if (p.a === weth) call(deployer, router, routerArt.abi, 'addLiquidityETH', [p.b, p.ether * price.get(p.b)! * E18, 0n, 0n, deployer, DEADLINE], 5_000_000n, { value: p.ether * E18 })
    else call(deployer, router, routerArt.abi, 'addLiquidity', [p.a, p.b, p.ether * price.get(p.a)! * E18, p.ether * price.get(p.b)! * E18, 0n, 0n, deployer, DEADLINE], 5_000_000n)
  }
  // WETH for the users and the bot.
  send({ from: deployer, to: weth, data: encodeFunctionData({ abi: wethArt.abi, functionName: 'deposit' }), value: BigInt(users.length + 500) * 5n * E18, gas: 100_000n })
  await mineSetup()
  const pools: DexPool[] = []
  for (const p of poolSpecs) {
    const address = (await client.readContract({ address: factories[p.exchange], abi: factoryArt.abi, functionName: 'getPair', args: [p.a, p.b] })) as Address
    pools.push({ address: address.toLowerCase() as Address, exchange: p.exchange === 0 ? 'a' : 'b', tokens: [p.a, p.b], hot: p.hot })
  }

  // Every user holds each token and some WETH and has approved both routers; the bot holds
  // inventory to trade with.
  for (const u of users) {
    for (const t of tokens) call(deployer, t, token.abi, 'transfer', [u, 100_000n * E18], 100_000n)
    call(deployer, weth, wethArt.abi, 'transfer', [u, 5n * E18], 100_000n)
  }
  call(deployer, weth, wethArt.abi, 'transfer', [bot, 2000n * E18], 100_000n)
  call(deployer, T0, token.abi, 'transfer', [bot, 6_000_000n * E18], 100_000n)
  await mineSetup()
  for (const u of users) for (const r of routers) for (const t of tokens) call(u, t, token.abi, 'approve', [r, MAX], 100_000n)
  await mineSetup()

  const rng = generator(params.seed ?? 1)
  const { random, pick, size } = rng
  const [hotWT0, , , forkWT0] = pools as [DexPool, DexPool, DexPool, DexPool]
  const coldPools = pools.filter((p) => !p.hot)

  const blocks: MinedDexBlock[] = []
  for (let b = 0; b < (params.blocks ?? 3); b++) {
    // Minimums are quoted from the reserves before the block, with the slippage tolerance a
    // wallet would set: swaps that the block's earlier swaps moved too far revert, as real ones do.
    const reserves = new Map<Address, Map<Address, bigint>>()
    for (const p of pools) {
      const [r0, r1] = (await client.readContract({ address: p.address, abi: pairArt.abi, functionName: 'getReserves' })) as [bigint, bigint, number]
      const token0 = BigInt(p.tokens[0]) < BigInt(p.tokens[1]) ? p.tokens[0] : p.tokens[1]
      const token1 = token0 === p.tokens[0] ? p.tokens[1] : p.tokens[0]
      reserves.set(
        p.address,
        new Map([
          [token0, r0],
          [token1, r1],
        ]),
      )
    }
    const poolOf = (exchange: 'a' | 'b', x: Address, y: Address) => pools.find((p) => p.exchange === exchange && p.tokens.includes(x) && p.tokens.includes(y))!
    const quote = (path: Address[], amountIn: bigint, exchange: 'a' | 'b' = 'a') => {
      let amount = amountIn
      for (let i = 0; i + 1 < path.length; i++) {
        const r = reserves.get(poolOf(exchange, path[i]!, path[i + 1]!).address)!
        amount = amountOut(amount, r.get(path[i]!)!, r.get(path[i + 1]!)!)
      }
      return amount
    }
    const tolerance = () => pick([5n, 10n, 10n, 30n]) // per mille
    const minimum = (out: bigint) => (out * (1000n - tolerance())) / 1000n
    /** A router swap along `path` (tokens; `weth` at an end means ether in or out). */
    const routerSwap = (from: Address, path: Address[], value: number, kind: DexTxKind, hot: boolean, exchange: 'a' | 'b' = 'a') => {
      const amountIn = (size(value / 40, value) * price.get(path[0]!)!) as bigint
      const min = minimum(quote(path, amountIn, exchange))
      const router = routers[exchange === 'a' ? 0 : 1]
      const gas = 120_000n + 80_000n * BigInt(path.length - 1)
      const tip = GWEI + BigInt(Math.floor(random() * 4e9))
      if (path[0] === weth) call(from, router, routerArt.abi, 'swapExactETHForTokens', [min, path, from, DEADLINE], gas, { value: amountIn, kind, hot, tip })
      else if (path.at(-1) === weth) call(from, router, routerArt.abi, 'swapExactTokensForETH', [amountIn, min, path, from, DEADLINE], gas, { kind, hot, tip })
      else call(from, router, routerArt.abi, 'swapExactTokensForTokens', [amountIn, min, path, from, DEADLINE], gas, { kind, hot, tip })
    }
    for (let i = 0; i < txsPerBlock; i++) {
      const u = pick(users)
      const tip = GWEI + BigInt(Math.floor(random() * 4e9))
      if (random() < contention) {
        const r = random()
        if (r < 0.5) {
          // Most flow goes to the two deepest pools, in both directions.
          const [x, y] = pick([
            [weth, T0],
            [weth, T0],
            [weth, T1],
            [T0, T1],
          ] as const)
          const path = random() < 0.5 ? [x, y] : [y, x]
          routerSwap(u, path, 4, 'swap', true, x === weth && y === T0 && random() < 0.2 ? 'b' : 'a')
        } else if (r < 0.8) {
          const path = pick([
            [weth, T0, T1],
            [T1, T0, weth],
            [T0, weth, T1],
            [T1, weth, T0],
            [T2, weth, T0],
            [T0, T1, weth, T3],
          ])
          routerSwap(u, path, 3, 'multihop', true)
        } else {
          // A back-run: sell on one exchange's WETH/T0 pool, buy back on the other's.
          const [pairIn, pairOut] = random() < 0.5 ? [hotWT0, forkWT0] : [forkWT0, hotWT0]
          const tokenIn = random() < 0.5 ? weth : T0
          const amountIn = size(0.05, 2) * price.get(tokenIn)!
          const minBack = (amountIn * pick([960n, 980n, 990n])) / 1000n
          call(pick(searchers), bot, botArt.abi, 'backrun', [pairIn.address, pairOut.address, tokenIn, amountIn, minBack], 300_000n, { kind: 'backrun', hot: true, tip: tip + 5n * GWEI })
        }
      } else {
        const r = random()
        const peer = pick(users.filter((x) => x !== u))
        if (r < 0.3) call(u, pick(tokens), token.abi, 'transfer', [peer, size(1, 500)], 80_000n, { kind: 'transfer', tip })
        else if (r < 0.55)
          send({
            from: u,
            to: random() < 0.5 ? peer : (`0x${(0xd00d0000 + b * 100_000 + i).toString(16).padStart(40, '0')}` as Address),
            data: '0x',
            value: size(0.001, 1),
            gas: 21_000n,
            kind: 'eth',
            tip,
          })
        else if (r < 0.75) {
          if (random() < 0.5) call(u, weth, wethArt.abi, 'deposit', [], 60_000n, { kind: 'weth', tip, value: size(0.01, 2) })
          else call(u, weth, wethArt.abi, 'withdraw', [size(0.01, 1)], 60_000n, { kind: 'weth', tip })
        } else {
          const p = pick(coldPools)
          routerSwap(u, random() < 0.5 ? [...p.tokens] : [p.tokens[1], p.tokens[0]], 1, 'coldSwap', false)
        }
      }
    }
    const kinds: Record<DexTxKind, number> = { swap: 0, multihop: 0, backrun: 0, transfer: 0, eth: 0, weth: 0, coldSwap: 0 }
    for (const q of queued) kinds[q.kind!]++
    const hot = queued.filter((q) => q.hot).length
    const mined = await mine()
    const status = new Map((await receiptsOf(mined.number)).map((r) => [r.transactionHash, r.status]))
    const revertedKinds: Partial<Record<DexTxKind, number>> = {}
    mined.sent.forEach((q, i) => {
      if (status.get(mined.hashes[i]!) !== '0x1') revertedKinds[q.kind!] = (revertedKinds[q.kind!] ?? 0) + 1
    })
    const reverted = Object.values(revertedKinds).reduce((n, x) => n + x, 0)
    const block: MinedDexBlock = { number: mined.number, hash: mined.hash, transactions: mined.sent.length, reverted, revertedKinds, hot, kinds, gasUsed: mined.gasUsed }
    blocks.push(block)
    params.onBlock?.(block)
  }
  return { blocks, pools, weth, routers, bot, tokens, contention }
}
