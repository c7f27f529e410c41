// State adapters backed by a node: the pre-state of a block from `debug_traceBlockByNumber` with
// geth's prestateTracer, or key by key with `eth_getProof`/`eth_getCode` at the parent block,
// optionally through the on-disk cache. Either way the engine runs on a partial state and reports
// what it missed; this adapter fetches that and the block runs again.
import { keccak256, numberToHex, type Address, type Hash, type Hex } from 'viem'
import type { RpcBlock } from '../block.js'
import { InvalidInputError, RpcResponseError } from '../errors.js'
import { witnessState, type ExecutionWitness, type MissingKeys, type PartialStateSource, type StateAdapter } from '../state.js'
import { rpcOf, withHeaders, type LoadedBlock } from './block.js'
import type { StateCache } from './cache.js'
import { address, data, fail, hash, object, quantity } from './check.js'
import { CheckedHashes } from './checked-hashes.js'
import { mapLimit, type Rpc, type RpcOptions, type RpcSource } from './client.js'
import { KnownState, slotKey, type KnownAccount } from './known.js'

/** Where the pre-state comes from. */
export type StateSourceKind = 'prestate' | 'proofs' | 'cache' | 'witness'

export type RpcStateParameters = (RpcSource | { rpc: Rpc } | { client?: undefined; rpcUrl?: undefined }) & {
  /**
   * `prestate` (default): one `debug_traceBlockByNumber` call (prestateTracer), anything it left
   * out by proofs. `proofs`: `eth_getProof`/`eth_getCode` at the parent block, for nodes without
   * the debug namespace. `cache`: the cache only, no node (offline replay). `witness`: one
   * `debug_executionWitness` call (reth): a pre-state proven against the parent header, and the
   * post-state root checked (`verification.stateRoot`).
   */
  source?: StateSourceKind
  /** Reads and stores every fetched account, slot, code and header. */
  cache?: StateCache
  /** The chain id (saves an `eth_chainId` call; required with `source: 'cache'` and no node). */
  chainId?: number
  /** Retries, timeout and batching of a client built from `rpcUrl`. */
  rpcOptions?: RpcOptions
  /** Requests in flight at once (default 16). */
  concurrency?: number
  /** Executions per block before giving up on missing keys (default 16). */
  maxRounds?: number
  /** Slots per `eth_getProof` request (default 64). */
  slotsPerProof?: number
}

const KECCAK_EMPTY = keccak256('0x')
// Root of an empty trie: keccak256 of the RLP of an empty string.
const EMPTY_ROOT = keccak256('0x80')
const ZERO_HASH = `0x${'0'.repeat(64)}` as Hash
// Code and proof nodes already checked against their hashes, kept by an adapter (hex characters).
const CHECKED_CHARS = 64 * 1024 * 1024

/** A state adapter reading from a node (and/or the cache). */
export class RpcStateAdapter implements StateAdapter {
  readonly kind: string
  readonly rpc: Rpc
  readonly source: StateSourceKind
  private readonly cache: StateCache | undefined
  private readonly concurrency: number
  private readonly maxRounds: number
  private readonly slotsPerProof: number
  private readonly chainId: number | undefined
  /** @internal Code and proof nodes checked against their hashes (each hashed once per adapter). */
  readonly checked = new CheckedHashes(CHECKED_CHARS)
  // Accounts whose code this adapter has asked for or been given: others' code is asked for with
  // their first slot proof, in the same batch, instead of one round trip after it.
  private readonly codeSeen = new Set<Address>()

  /** @internal Whether `address`'s code was seen before (and notes that it now is). */
  seenCode(address: Address): boolean {
    if (this.codeSeen.has(address)) return true
    // A bound, not a cache: forgetting only costs a code request in a batch that goes anyway.
    if (this.codeSeen.size >= 100_000) this.codeSeen.clear()
    this.codeSeen.add(address)
    return false
  }

  constructor(params: RpcStateParameters) {
    this.source = params.source ?? 'prestate'
    if (!['prestate', 'proofs', 'cache', 'witness'].includes(this.source)) {
      throw new InvalidInputError(`source must be prestate, proofs, cache or witness, got ${String(params.source)}`)
    }
    if (this.source === 'cache' && !params.cache) throw new InvalidInputError("source 'cache' needs a cache")
    this.kind = this.source === 'cache' ? 'cache' : `rpc-${this.source}`
    this.rpc = rpcOf(params, params.rpcOptions)
    this.cache = params.cache
    this.chainId = params.chainId
    this.concurrency = params.concurrency ?? 16
    this.maxRounds = params.maxRounds ?? 16
    this.slotsPerProof = params.slotsPerProof ?? 64
    for (const [name, v] of [
      ['concurrency', this.concurrency],
      ['maxRounds', this.maxRounds],
      ['slotsPerProof', this.slotsPerProof],
    ] as const) {
      if (!Number.isInteger(v) || v < 1) throw new InvalidInputError(`${name} must be a positive integer, got ${String(v)}`)
    }
  }

  async load({ block }: { block: RpcBlock | undefined }): Promise<PartialStateSource> {
    if (!block) throw new InvalidInputError(`the ${this.kind} state adapter needs the block as JSON-RPC or viem (not prepared)`)
    const started = performance.now()
    const callsBefore = this.rpc.calls
    const hitsBefore = this.cache?.hits ?? 0
    const number = BigInt(block.number)
    if (number === 0n) throw new InvalidInputError('the genesis block has no parent state to read')
    if (this.source === 'witness') return this.loadWitness(number, started, callsBefore)
    const chainId = this.chainId ?? (await this.rpc.chainId())
    const loaded = withHeaders(this.rpc, this.cache, chainId, block)
    const parent = block.parentHash.toLowerCase() as Hash
    const known = new KnownState()
    this.cache?.loadState(chainId, parent, known)
    const session = new Session(this, loaded, chainId, parent, number - 1n, known)
    if (this.source === 'prestate') await session.seedFromTrace()
    else if (this.source === 'proofs') await session.seedAccounts(block)
    const partial = await known.prepare()
    const loadMs = performance.now() - started
    return {
      partial,
      maxRounds: this.maxRounds,
      fetchMissing: async (missing) => {
        await session.fetch(missing)
        return known.prepare()
      },
      stats: () => ({ kind: this.kind, rpcCalls: this.rpc.calls - callsBefore, cacheHits: (this.cache?.hits ?? 0) - hitsBefore, loadMs }),
    }
  }

  /** One `debug_executionWitness` call; the engine checks that its nodes hash up to the parent's state root. */
  private async loadWitness(number: bigint, started: number, callsBefore: number): Promise<PartialStateSource> {
    const method = 'debug_executionWitness'
    const raw = object(method, await this.rpc.request<unknown>(method, [numberToHex(number)]), 'witness')
    for (const key of ['state', 'codes'] as const) {
      if (!Array.isArray(raw[key])) fail(method, `the witness has no ${key} array`)
    }
    const partial = await witnessState(raw as ExecutionWitness)
    const loadMs = performance.now() - started
    return {
      partial,
      maxRounds: 1,
      // A witness state is not partial: a key it lacks fails the execution with a StateError.
      fetchMissing: async () => {
        throw new RpcResponseError(method, 'the witness lacks keys the block reads')
      },
      stats: () => ({ kind: this.kind, rpcCalls: this.rpc.calls - callsBefore, cacheHits: 0, loadMs }),
    }
  }

  /** @internal */
  get settings() {
    return { cache: this.cache, concurrency: this.concurrency, slotsPerProof: this.slotsPerProof }
  }
}

/** Fetching for one block (also used by range replay, into a fresh `KnownState` per block). */
export class Session {
  private stateRoot: Promise<Hash> | undefined

  constructor(
    private readonly adapter: RpcStateAdapter,
    private readonly block: LoadedBlock,
    private readonly chainId: number,
    private readonly stateBlock: Hash,
    private readonly parentNumber: bigint,
    private readonly known: KnownState,
    /** Calls go through this one instead of the adapter's (range replay counts them per block). */
    private readonly via?: Rpc,
    /** Code already held for an account (range replay's carried state), checked against the proof's code hash. */
    private readonly codeHint?: (address: Address) => Hex | undefined,
  ) {}

  private get rpc() {
    return this.via ?? this.adapter.rpc
  }

  private get cache() {
    return this.adapter.settings.cache
  }

  /** The parent's state root, checked against the block's parent hash. */
  private parentStateRoot(): Promise<Hash> {
    this.stateRoot ??= this.block.header(this.parentNumber).then((h) => {
      if (h.hash !== this.stateBlock) {
        throw new RpcResponseError('eth_getBlockByNumber', `block ${this.parentNumber} has hash ${h.hash}, but block ${this.block.number} names ${this.stateBlock} as its parent (reorg?)`)
      }
      return h.stateRoot
    })
    return this.stateRoot
  }

  /** The block's pre-state from the prestateTracer: the first occurrence of each account and slot. */
  async seedFromTrace(): Promise<void> {
    if (this.cache?.hasSeed(this.chainId, this.stateBlock, 'prestate')) return
    const method = 'debug_traceBlockByNumber'
    const txs = this.block.block.transactions
    const raw = await this.rpc.request<unknown>(method, [numberToHex(this.block.number), { tracer: 'prestateTracer' }])
    if (!Array.isArray(raw)) fail(method, 'the trace is not an array')
    if (raw.length !== txs.length) fail(method, `${raw.length} traces for ${txs.length} transactions`)
    const fresh = new KnownState()
    raw.forEach((entry, i) => {
      const e = object(method, entry, `trace ${i}`)
      const txHash = (txs[i] as { hash?: string }).hash?.toLowerCase()
      if (e.txHash !== undefined && txHash !== undefined && String(e.txHash).toLowerCase() !== txHash) {
        fail(method, `trace ${i} is of transaction ${String(e.txHash)}, expected ${txHash}`)
      }
      if (e.error !== undefined) fail(method, `trace ${i} failed: ${JSON.stringify(e.error)}`)
      const result = object(method, e.result, `trace ${i} result`)
      for (const [addr, value] of Object.entries(result)) {
        const a = address(method, addr, `trace ${i} account`)
        const acc = object(method, value, `trace ${i} account ${a}`)
        if (!fresh.accounts.has(a)) {
          fresh.setAccount(a, {
            balance: acc.balance === undefined ? 0n : quantity(method, acc.balance, `${a} balance`),
            nonce: acc.nonce === undefined ? 0n : typeof acc.nonce === 'number' ? BigInt(acc.nonce) : quantity(method, acc.nonce, `${a} nonce`),
            code: acc.code === undefined ? '0x' : data(method, acc.code, `${a} code`),
            storageComplete: false,
          })
        }
        const account = fresh.accounts.get(a)!
        if (acc.storage !== undefined) {
          for (const [slot, v] of Object.entries(object(method, acc.storage, `${a} storage`))) {
            const key = slotKey(data(method, slot, `${a} slot`))
            if (!account.storage.has(key)) account.storage.set(key, slotKey(data(method, v, `${a} slot ${key}`)))
          }
        }
      }
    })
    // What the cache or an earlier round already holds stays; the trace fills in the rest.
    for (const [a, acc] of fresh.accounts) {
      const existing = this.known.accounts.get(a)
      if (!existing) this.known.setAccount(a, { ...acc, storage: new Map(acc.storage) })
      else for (const [k, v] of acc.storage) if (!existing.storage.has(k)) existing.storage.set(k, v)
    }
    this.store([...fresh.accounts], [])
    this.cache?.putSeed(this.chainId, this.stateBlock, 'prestate')
  }

  /** Accounts every block needs up front: its beneficiary, senders and recipients. */
  async seedAccounts(block: RpcBlock, known: (address: Address) => boolean = () => false): Promise<void> {
    const wanted = new Set<Address>()
    if (typeof block.miner === 'string') wanted.add(block.miner.toLowerCase() as Address)
    for (const tx of block.transactions) {
      for (const k of ['from', 'to'] as const) {
        const v = tx[k]
        if (typeof v === 'string') wanted.add(v.toLowerCase() as Address)
      }
    }
    await this.fetch({ accounts: [...wanted].filter((a) => !this.known.hasAccount(a) && !known(a)), storage: {}, blockHashes: [] })
  }

  /** Fetches what an execution missed (proofs at the parent block, headers for BLOCKHASH). */
  async fetch(missing: MissingKeys): Promise<void> {
    const { concurrency, slotsPerProof } = this.adapter.settings
    const jobs: { address: Address; slots: Hash[] }[] = []
    const byAddress = new Map<Address, Hash[]>()
    for (const a of missing.accounts) byAddress.set(a.toLowerCase() as Address, [])
    for (const [a, slots] of Object.entries(missing.storage)) {
      const addr = a.toLowerCase() as Address
      byAddress.set(addr, [...(byAddress.get(addr) ?? []), ...slots.map((s) => s.toLowerCase() as Hash)])
    }
    for (const [a, slots] of byAddress) {
      if (slots.length === 0) jobs.push({ address: a, slots })
      for (let i = 0; i < slots.length; i += slotsPerProof) jobs.push({ address: a, slots: slots.slice(i, i + slotsPerProof) })
    }
    const [hashes] = await Promise.all([
      missing.blockHashes.length > 0 ? this.block.blockHashes(missing.blockHashes) : new Map<bigint, Hash>(),
      mapLimit(jobs, concurrency, (job) => this.proof(job.address, job.slots)),
    ])
    for (const [n, h] of hashes) this.known.blockHashes.set(n, h)
  }

  /** One `eth_getProof` at the parent block, checked against the parent's state root. */
  private async proof(addr: Address, slots: Hash[]): Promise<void> {
    const method = 'eth_getProof'
    // An account with storage has code, nearly always: unless it is held already, it is asked for
    // with the proof (same batch), not after the proof names its hash (one round trip more).
    const early = slots.length > 0 && !this.cache && !this.adapter.seenCode(addr) ? this.rpc.request<unknown>('eth_getCode', [addr, numberToHex(this.parentNumber)]) : undefined
    early?.catch(() => {})
    const [root, raw] = await Promise.all([this.parentStateRoot(), this.rpc.request<unknown>(method, [addr, slots, numberToHex(this.parentNumber)])])
    const p = object(method, raw, 'proof')
    if (address(method, p.address, 'address') !== addr) fail(method, `asked for ${addr}, got the proof of ${String(p.address)}`)
    const balance = quantity(method, p.balance, 'balance')
    const nonce = quantity(method, p.nonce, 'nonce')
    const codeHash = hash(method, p.codeHash, 'code hash')
    const storageHash = hash(method, p.storageHash, 'storage hash')
    if (!Array.isArray(p.accountProof) || p.accountProof.length === 0) fail(method, `no account proof for ${addr}`)
    // The proof's top node must be the state trie's root: a proof at another block fails here.
    const top = data(method, p.accountProof[0], 'account proof node')
    if (!this.adapter.checked.matches(top, root)) fail(method, `the account proof of ${addr} is for state root ${keccak256(top)}, not the parent block's ${root}`)
    if (!Array.isArray(p.storageProof) || p.storageProof.length !== slots.length) {
      fail(method, `asked for ${slots.length} slots of ${addr}, got ${Array.isArray(p.storageProof) ? p.storageProof.length : 'no'} storage proofs`)
    }
    const values: [Hex, Hex][] = p.storageProof.map((sp: unknown, i: number) => {
      const s = object(method, sp, `storage proof ${i}`)
      const key = slotKey(data(method, s.key, 'slot key'))
      if (BigInt(key) !== BigInt(slots[i]!)) fail(method, `storage proof ${i} of ${addr} is for slot ${key}, asked for ${slots[i]}`)
      const value = quantity(method, s.value, `slot ${key} value`)
      const nodes = s.proof
      if (Array.isArray(nodes) && nodes.length > 0 && storageHash !== EMPTY_ROOT && !this.adapter.checked.matches(data(method, nodes[0], 'storage proof node'), storageHash)) {
        fail(method, `the storage proof of ${addr} slot ${key} does not match its storage root ${storageHash}`)
      }
      if (storageHash === EMPTY_ROOT && value !== 0n) fail(method, `${addr} has an empty storage root but slot ${key} = ${value}`)
      return [key, numberToHex(value, { size: 32 })]
    })
    const noCode = codeHash === KECCAK_EMPTY || codeHash === ZERO_HASH
    if (balance === 0n && nonce === 0n && noCode && storageHash === EMPTY_ROOT) {
      // Empty and without storage: since EIP-161 the same as an account that does not exist.
      this.known.setAbsent(addr)
      this.store([], [addr])
      return
    }
    let code: Hex = '0x'
    if (!noCode) {
      code = this.adapter.checked.get(codeHash) ?? (await this.code(addr, codeHash, early))
    }
    if (!this.known.accounts.has(addr)) this.known.setAccount(addr, { balance, nonce, code, storageComplete: storageHash === EMPTY_ROOT })
    const account = this.known.accounts.get(addr)!
    for (const [k, v] of values) account.storage.set(k, v)
    this.store([[addr, { balance, nonce, code, storageComplete: storageHash === EMPTY_ROOT, storage: new Map(values) }]], [])
  }

  /** The code of `addr`, checked against the hash its proof gives: the carried code, the cache's, or the node's (`asked` already). */
  private async code(addr: Address, codeHash: Hash, asked?: Promise<unknown>): Promise<Hex> {
    const hinted = this.codeHint?.(addr)
    // A hint of another hash is not used: the code is fetched, and the carried state's check reports the difference.
    if (hinted !== undefined && this.adapter.checked.matches(hinted, codeHash)) return hinted
    const code = this.cache?.getCode(codeHash) ?? data('eth_getCode', await (asked ?? this.rpc.request<unknown>('eth_getCode', [addr, numberToHex(this.parentNumber)])), 'code')
    if (!this.adapter.checked.matches(code, codeHash)) fail('eth_getCode', `the code of ${addr} hashes to ${keccak256(code)}, its proof says ${codeHash}`)
    return code
  }

  private store(accounts: [Address, KnownAccount][], absent: Address[]): void {
    if (!this.cache) return
    this.cache.putState(this.chainId, this.stateBlock, {
      accounts: accounts.map(([a, acc]) => [a, { ...acc, codeHash: acc.code === '0x' ? null : keccak256(acc.code) }]),
      absent,
      slots: [],
    })
  }
}

/**
 * A state adapter reading a block's pre-state from a node: by default the prestateTracer
 * (`debug_traceBlockByNumber`), or `source: 'proofs'` for nodes without the debug namespace;
 * `cache` makes re-runs free of RPC calls.
 *
 * @example
 * const result = await executeBlock({ block, state: rpcState({ rpcUrl, source: 'proofs' }), chain })
 */
export function rpcState(params: RpcStateParameters): RpcStateAdapter {
  return new RpcStateAdapter(params)
}
