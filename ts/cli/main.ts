#!/usr/bin/env node
// The `parallel-evm` command line.
import { availableParallelism } from 'node:os'
import { Command, InvalidArgumentError, Option } from 'commander'
import { ParallelEvmError } from '../errors.js'
import { WORKLOADS } from '../bench/workloads.js'
import { benchCommand, defaultThreads } from './bench.js'
import { conformanceCommand } from './conformance.js'
import { generateCommand } from './generate.js'
import { UsageError } from './format.js'
import { runCommand } from './run.js'
import { verifyCommand } from './verify.js'
import { runRpcCommand } from './run-rpc.js'
import { replayCommand } from './replay.js'
import { clusterEnqueueCommand, clusterRetryCommand, clusterStatusCommand, clusterWorkCommand } from './cluster.js'
import { DEFAULT_CHUNK, DEFAULT_QUEUE } from '../cluster/queue.js'
import { DEFAULT_CARRY_BUDGET, DEFAULT_PREFETCH } from '../replay/replay.js'
import { traceCommand } from './trace.js'
import { MAX_ROUNDS } from './timing.js'

function positiveInt(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer')
  return n
}

function nonNegativeInt(value: string): number {
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer')
  return n
}

function threadList(value: string): number[] {
  return value.split(',').map((v) => positiveInt(v.trim()))
}

const program = new Command()
  .name('parallel-evm')
  .description('Parallel (Block-STM) Ethereum block execution on revm')
  .version((require('../../package.json') as { version: string }).version)
  .showHelpAfterError()

program
  .command('run')
  .description('execute blocks (a fixture folder, a block.json, or a folder of fixture folders; with --rpc: a block number, latest or a range a..b from a node) and check them against their headers')
  .argument('<target>', 'fixture folder, block.json, or folder of fixture folders; with --rpc: <number|latest|a..b>')
  .option('--prestate <file>', 'pre-state JSON (geth prestateTracer); default: prestate.json beside the block')
  .option('--rpc <url>', 'load blocks and pre-state from this JSON-RPC node (http/https)')
  .addOption(
    new Option(
      '--state <source>',
      'with --rpc: pre-state from the prestateTracer (debug_traceBlockByNumber), from eth_getProof, or from the execution witness (debug_executionWitness, reth; checks the post-state root)',
    )
      .choices(['prestate', 'proofs', 'witness'])
      .default('prestate'),
  )
  .option('--cache <dir>', 'with --rpc: SQLite cache of blocks and state (a re-run makes no RPC calls)')
  .option('--hardfork <name>', 'with --rpc: the hardfork of a chain other than mainnet (e.g. cancun for anvil)')
  .option('--chain-id <n>', "with --rpc: the node's chain id (default: asked with eth_chainId)", (v) => Number(v))
  .option('--threads <n>', 'engine worker threads', positiveInt, availableParallelism())
  .addOption(new Option('--mode <mode>', 'execution mode').choices(['auto', 'parallel', 'sequential']).default('auto'))
  .option('--repeat <n>', 'timed runs per mode, after one untimed run, alternating sequential and the requested mode (best time is reported)', positiveInt, 3)
  .option('--min-time <ms>', `more timed runs (up to ${MAX_ROUNDS}) until the sequential ones add up to this many ms, so that short blocks are timed as steadily as long ones`, nonNegativeInt, 25)
  .option('--json', 'one JSON object per block', false)
  .action(async (target: string, opts) => {
    if (opts.rpc) {
      if (opts.prestate) throw new UsageError('--prestate and --rpc exclude each other')
      process.exitCode = await runRpcCommand(target, opts)
    } else {
      for (const flag of ['cache', 'hardfork', 'chainId'] as const) {
        if (opts[flag] !== undefined) throw new UsageError(`--${flag === 'chainId' ? 'chain-id' : flag} needs --rpc`)
      }
      process.exitCode = await runCommand(target, opts)
    }
  })

program
  .command('replay')
  .description(
    'replay a range of blocks from a node in order, with state carried from block to block and the next blocks fetched ahead; checks every block against its header; writes JSON lines and/or SQLite; resumable',
  )
  .argument('<range>', 'a..b (inclusive) or one block number')
  .requiredOption('--rpc <url>', 'the JSON-RPC node (http/https)')
  .addOption(
    new Option('--state <source>', 'pre-state from the prestateTracer (debug_traceBlockByNumber), from eth_getProof, or from one debug_executionWitness per block (reth; nothing carried)')
      .choices(['prestate', 'proofs', 'witness'])
      .default('prestate'),
  )
  .option('--prefetch <n>', 'blocks fetched ahead of the one executing (0: each at its turn)', nonNegativeInt, DEFAULT_PREFETCH)
  .addOption(
    new Option('--tracer <name>', 'also trace every transaction with this geth tracer: each --out line gets traces').choices(['callTracer', 'prestateTracer', 'flatCallTracer', '4byteTracer']),
  )
  .option('--batch <n>', 'most consecutive blocks run in one engine call when their inputs are fetched (default: all ready; 1: one call per block)', positiveInt)
  .addOption(
    new Option('--on-reorg <policy>', 'a reorg under the range: stop with an error, or fetch again the blocks not yet written (an error still when it replaced one already written)')
      .choices(['error', 'refetch'])
      .default('error'),
  )
  .option('--no-carry', "fetch every block's whole pre-state instead of carrying the previous block's post-state")
  .option('--carry-budget <MiB>', 'most memory the carried state holds, MiB (least recently used keys leave first)', positiveInt, DEFAULT_CARRY_BUDGET / 1024 / 1024)
  .option('--cache <dir>', 'SQLite cache of blocks and state (a re-run makes no RPC calls)')
  .option('--out <file.jsonl>', 'write one JSON line per block: receipts (with logs) and the state diff')
  .option('--sqlite <file.db>', 'write blocks, transactions/receipts, logs and state changes into a SQLite database')
  .option('--postgres <url>', 'write the same tables into Postgres (postgres://user:password@host:port/database), one transaction per block')
  .option('--resume', 'continue after the last block the output(s) hold', false)
  .option('--threads <n>', 'engine worker threads', positiveInt, availableParallelism())
  .addOption(new Option('--mode <mode>', 'execution mode').choices(['auto', 'parallel', 'sequential']).default('auto'))
  .option('--hardfork <name>', 'the hardfork of a chain other than mainnet (e.g. cancun for anvil)')
  .option('--chain-id <n>', "the node's chain id (default: asked with eth_chainId)", (v) => Number(v))
  .option('--json', 'one JSON line per block and a summary line', false)
  .action(async (range: string, opts) => {
    process.exitCode = await replayCommand(range, { ...opts, carryBudget: opts.carryBudget * 1024 * 1024 })
  })

program
  .command('verify')
  .description(
    'execute blocks and check them: header (gas, receipts root, logs bloom, requests hash, transactions and withdrawals roots, block hash, signatures), state root (from witness.json, or --full-state), expected receipts, sequential vs parallel (--cross-check)',
  )
  .argument('<path>', 'fixture folder, block.json, or folder of fixture folders')
  .option('--prestate <file>', 'pre-state JSON; default: prestate.json beside the block')
  .option('--full-state', 'the pre-state is the whole chain state (anvil dump, genesis): check the post-state root', false)
  .option('--receipts <file>', 'expected receipts (eth_getBlockReceipts JSON); default: receipts.json beside the block when present')
  .option('--cross-check', 'also run sequentially and in parallel and compare receipts and state diffs field by field', false)
  .option('--threads <n>', 'engine worker threads', positiveInt, availableParallelism())
  .addOption(new Option('--mode <mode>', 'execution mode of the verified run').choices(['auto', 'parallel', 'sequential']).default('auto'))
  .option('--json', 'one JSON object per block', false)
  .action(async (path: string, opts) => {
    process.exitCode = await verifyCommand(path, opts)
  })

program
  .command('trace')
  .description(
    'trace every transaction of blocks (a fixture folder, a block.json, or a folder of fixture folders; with --rpc: a block number, latest or a range a..b) with a geth tracer: one JSON line per block { number, traces }, as debug_traceBlockByNumber answers',
  )
  .argument('<target>', 'fixture folder, block.json, or folder of fixture folders; with --rpc: <number|latest|a..b>')
  .option('--rpc <url>', 'load blocks and pre-state from this JSON-RPC node (http/https)')
  .addOption(new Option('--tracer <name>', 'geth tracer').choices(['callTracer', 'prestateTracer', 'flatCallTracer', '4byteTracer']).default('callTracer'))
  .option('--diff-mode', 'prestateTracer: pre and post state of what each transaction changed', false)
  .option('--only-top-call', 'callTracer: the top call only', false)
  .option('--with-log', 'callTracer: logs inside each call', false)
  .option('--threads <n>', 'engine and tracing threads', positiveInt, availableParallelism())
  .addOption(new Option('--mode <mode>', 'execution mode').choices(['auto', 'parallel', 'sequential']).default('auto'))
  .option('--out <file>', 'write the JSON lines to this file instead of stdout')
  .option('--compare-rpc', "with --rpc: fetch the node's own debug_traceBlockByNumber for the same config and report the first difference (exit code 1 when any)", false)
  .option('--hardfork <name>', 'with --rpc: the hardfork of a chain other than mainnet (e.g. prague for anvil)')
  .option('--chain-id <n>', "with --rpc: the node's chain id (default: asked with eth_chainId)", (v) => Number(v))
  .action(async (target: string, opts) => {
    if (!opts.rpc) {
      for (const flag of ['hardfork', 'chainId'] as const) {
        if (opts[flag] !== undefined) throw new UsageError(`--${flag === 'chainId' ? 'chain-id' : flag} needs --rpc`)
      }
    }
    process.exitCode = await traceCommand(target, opts)
  })

program
  .command('bench')
  .description('sequential vs parallel on generated blocks (transfers, ERC20, Uniswap V2, contended) and the largest mainnet fixtures (when ../shared is present); optionally @ethereumjs/vm as a peer')
  .option('--workloads <list>', `generated workloads (${WORKLOADS.join(', ')}; default: all whose optional packages are installed)`, (v) => v.split(',').map((w) => w.trim()))
  .option('--txs <n>', 'transactions per generated block', positiveInt, 1000)
  .option('--seed <n>', 'seed of the generated blocks', nonNegativeInt, 1)
  .option('--threads <list>', 'parallel thread counts (default: 1,2,4,8, and 16 on machines that have them)', threadList, defaultThreads())
  .option('--fixtures <dir>', 'folder of fixture folders (default: ../shared/fixtures/mainnet when present)')
  .option('--max-fixtures <n>', 'how many of the largest fixture blocks to include', nonNegativeInt, 4)
  .option('--time <ms>', 'minimum sampling time per configuration', positiveInt, 300)
  .option('--peer', 'also run every block through @ethereumjs/vm (optional dependency) and compare gas used', false)
  .option('--json', 'one JSON object per block', false)
  .option('--html <file>', 'write an HTML report with charts (needs the optional chart.js)')
  .option('--save-blocks <dir>', 'write each generated block as a fixture folder (block.json, prestate.json, chain.json)')
  .option('--results <dir>', 'write the raw results as JSON into this folder (default: bench/results in a repository checkout)')
  .option('--no-results', 'do not write a raw results file')
  .action(async (opts) => {
    process.exitCode = await benchCommand(opts)
  })

program
  .command('generate')
  .description('write generated bench blocks as fixture folders (block.json, prestate.json, chain.json) for run, the Rust replay example and bench/node-vs-replay.cjs')
  .argument('<workloads>', `comma-separated: ${WORKLOADS.join(', ')}`)
  .argument('<dir>', 'output folder (one <workload>-<txs>-<seed> folder per block)')
  .option('--txs <n>', 'transactions per block', positiveInt, 1000)
  .option('--seed <n>', 'seed', nonNegativeInt, 1)
  .option('--json', 'one JSON object per block', false)
  .action(async (workloads: string, dir: string, opts) => {
    process.exitCode = await generateCommand(
      workloads.split(',').map((w) => w.trim()),
      dir,
      opts,
    )
  })

program
  .command('conformance')
  .description('run the Ethereum consensus test vectors (ethereum/tests GeneralStateTests and BlockchainTests, Cancun) through the engine in every mode and check them')
  .argument('<paths...>', 'test files or folders (walked for .json files)')
  .addOption(
    new Option('--mode <mode>', 'only this mode (default: all; contended: every state-test transaction twice in one block, parallel vs sequential)').choices([
      'sequential',
      'parallel',
      'auto',
      'groups',
      'contended',
    ]),
  )
  .option('--threads <list>', 'thread counts of the parallel modes (default: 1,2,4,8)', threadList)
  .option('--skip <file>', 'skip list: PATH[::TEST] REASON per line')
  .option('--json', 'the whole report as one JSON object', false)
  .action(async (paths: string[], opts) => {
    process.exitCode = await conformanceCommand(paths, opts)
  })

const cluster = program.command('cluster').description('a range replay spread over BullMQ workers (Redis) on any number of machines, results in Postgres')
const redisOption = () => new Option('--redis <url>', 'the Redis server of the queue (redis://host:port)').makeOptionMandatory()
const queueOption = () => new Option('--queue <name>', 'queue name (one per backfill)').default(DEFAULT_QUEUE)

cluster
  .command('enqueue')
  .description('split a range into chunk jobs on the queue (idempotent: chunks already queued, done or failed are not added again)')
  .argument('<range>', 'a..b (inclusive) or one block number')
  .addOption(redisOption())
  .addOption(queueOption())
  .option('--chunk <n>', 'blocks per chunk', positiveInt, DEFAULT_CHUNK)
  .addOption(new Option('--state <source>', 'pre-state from the prestateTracer or from eth_getProof').choices(['prestate', 'proofs', 'witness']).default('prestate'))
  .option('--chain-id <n>', 'the chain id (default: the workers ask the node)', (v) => Number(v))
  .option('--hardfork <name>', 'the hardfork of a chain other than mainnet (e.g. cancun for anvil)')
  .option('--json', 'print the counts as JSON', false)
  .action(async (range: string, opts) => {
    process.exitCode = await clusterEnqueueCommand(range, opts)
  })

cluster
  .command('work')
  .description('take chunks from the queue, replay each (pipelined, state carried within the chunk) and write it into Postgres in one transaction; SIGTERM/SIGINT finishes the chunks in hand')
  .addOption(redisOption())
  .addOption(queueOption())
  .requiredOption('--rpc <url>', 'the JSON-RPC node (http/https)')
  .requiredOption('--postgres <url>', 'the Postgres database (postgres://user:password@host:port/database)')
  .option('--concurrency <n>', 'chunks replayed at once', positiveInt, 1)
  .option('--threads <n>', 'engine worker threads', positiveInt, availableParallelism())
  .option('--prefetch <n>', 'blocks fetched ahead within a chunk', nonNegativeInt, DEFAULT_PREFETCH)
  .option('--cache <dir>', 'SQLite cache of blocks and state')
  .option('--lock-duration <ms>', 'how long a chunk stays with a worker that stopped answering (killed, machine gone) before another takes it', positiveInt, 30_000)
  .option('--json', 'one JSON line per chunk event', false)
  .action(async (opts) => {
    process.exitCode = await clusterWorkCommand(opts)
  })

cluster
  .command('status')
  .description('waiting, active, completed and failed chunks, blocks/s over the last minute, failed chunks with their errors (exit 1 when some failed)')
  .addOption(redisOption())
  .addOption(queueOption())
  .option('--json', 'print the status as JSON', false)
  .action(async (opts) => {
    process.exitCode = await clusterStatusCommand(opts)
  })

cluster
  .command('retry-failed')
  .description('move every failed chunk back to waiting')
  .addOption(redisOption())
  .addOption(queueOption())
  .option('--json', 'print the count as JSON', false)
  .action(async (opts) => {
    process.exitCode = await clusterRetryCommand(opts)
  })

program.parseAsync().catch((e: unknown) => {
  if (e instanceof UsageError || e instanceof ParallelEvmError) {
    console.error(`parallel-evm: ${e instanceof ParallelEvmError ? `${e.code}: ${e.details || e.shortMessage}` : e.message}`)
    process.exitCode = 2
  } else {
    console.error(e)
    process.exitCode = 1
  }
})
