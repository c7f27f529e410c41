export { executeBlock, type ExecuteBlockParameters, type ExecutionMode } from './execute.js'
export type {
  CallFrame,
  CallTracerConfig,
  FlatCallTrace,
  FlatCallTracerConfig,
  FourByteResult,
  PrestateResult,
  PrestateTracerConfig,
  TraceConfig,
  TraceResult,
  TracerName,
  TransactionTrace,
} from './trace.js'
export { prepareBlock, toRpcBlock, type BlockLike, type ChainConfig, type PrepareBlockOptions, type PreparedBlock, type RpcBlock } from './block.js'
export {
  prepareState,
  prestateAdapter,
  witnessState,
  type ExecutionWitness,
  type WitnessStateOptions,
  type BlockHashes,
  type MissingKeys,
  type PartialStateSource,
  type StateLoadStats,
  type StateRound,
  type Prestate,
  type PrestateAccount,
  type PreparedState,
  type StateAdapter,
  type StateLike,
  type StateSource,
} from './state.js'
export type { AccountDiff, ExecutionEngine, ExecutionResult, ExecutionStats, Log, Receipt, StateDiff, Verification } from './result.js'
export {
  ParallelEvmError,
  InvalidInputError,
  InvalidTransactionError,
  InvalidBlockError,
  MissingBlockHashError,
  StateError,
  InternalError,
  MissingDependencyError,
  RpcError,
  RpcResponseError,
  StateMismatchError,
  ReorgError,
  ReplayError,
  type ErrorCode,
} from './errors.js'
export {
  runConformance,
  type ConformanceFailure,
  type ConformanceMode,
  type ConformanceReport,
  type ConformanceSummary,
  type RunConformanceParameters,
  type RunConformanceReturnType,
} from './conformance.js'
export { loadFixture, prepareFixture, type Fixture, type PreparedFixture } from './fixture.js'
export { generateBlock, type GeneratedBlock, type Workload } from './generate.js'
export {
  stateRoot,
  verifyBlock,
  type Check,
  type CheckName,
  type CheckStatus,
  type ExpectedReceipt,
  type VerificationReport,
  type VerifyBlockParameters,
} from './verify.js'
export { loadBlock, type BlockRef, type LoadBlockParameters, type LoadedBlock } from './rpc/block.js'
export { rpcState, RpcStateAdapter, type RpcStateParameters, type StateSourceKind } from './rpc/state.js'
export { StateCache } from './rpc/cache.js'
export { Rpc, type RpcOptions, type RpcSource } from './rpc/client.js'
export {
  replayBlocks,
  DEFAULT_PREFETCH,
  type ReplayBlocksParameters,
  type ReplayBlocksReturnType,
  type ReplayBlockStats,
  type ReplayedBlock,
  type ReplayReorgPolicy,
  type ReplayStateSource,
  type ReplayTimings,
} from './replay/replay.js'
export { JsonlSink, type OutputPosition, type ReplaySink, type SinkOptions } from './replay/jsonl.js'
export { SqliteSink } from './replay/sqlite.js'
export { POSTGRES_SCHEMA_VERSION, PostgresSink, type PostgresRangeWrite, type PostgresSinkParameters } from './replay/postgres.js'
export {
  type ChunkJobData,
  type ChunkResult,
  chunkJobId,
  type ClusterConnection,
  type ClusterStatusReturnType,
  clusterStatus,
  DEFAULT_CHUNK,
  DEFAULT_QUEUE,
  type EnqueueRangeParameters,
  type EnqueueRangeReturnType,
  enqueueRange,
  type FailedChunk,
  retryFailed,
} from './cluster/queue.js'
export { type ChunkEvent, type ClusterWorker, type StartWorkerParameters, startWorker } from './cluster/worker.js'
