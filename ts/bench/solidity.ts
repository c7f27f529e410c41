// Compiles the bench's Solidity sources with the `solc` npm package (optional) and caches the
// artifact under node_modules/.cache/parallel-evm (or $PARALLEL_EVM_CACHE), keyed by the source,
// the compiler version and the settings, so only the first bench run pays for compilation.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { keccak256, toHex, type Abi, type Hex } from 'viem'
import { InternalError } from '../errors.js'
import { requireOptional, resolveOptional } from './optional.js'

export type StorageSlot = { label: string; slot: string; offset: number; type: string }

export type CompiledContract = {
  abi: Abi
  /** Creation code. */
  bytecode: Hex
  /** Runtime code (what a deployment leaves at the address). */
  deployedBytecode: Hex
  storageLayout: StorageSlot[]
}

type Solc = { version(): string; compile(input: string, callbacks: { import(path: string): { contents: string } | { error: string } }): string }

/** Where compiled artifacts (and generated blocks) are cached. */
export function cacheDir(): string {
  return process.env.PARALLEL_EVM_CACHE ?? join(__dirname, '..', '..', 'node_modules', '.cache', 'parallel-evm')
}

const SETTINGS = { optimizer: { enabled: true, runs: 200 }, evmVersion: 'cancun' }

/** Compiles `contract` from a single Solidity source; imports of `@openzeppelin/...` resolve to node_modules. */
export function compileContract(fileName: string, source: string, contract: string): CompiledContract {
  const solc = requireOptional<Solc>('solc', 'Compiling the bench contracts')
  const key = keccak256(toHex(JSON.stringify([fileName, source, contract, solc.version(), SETTINGS])))
  const cached = join(cacheDir(), `solc-${contract}-${key.slice(2, 18)}.json`)
  if (existsSync(cached)) return JSON.parse(readFileSync(cached, 'utf8')) as CompiledContract

  const input = {
    language: 'Solidity',
    sources: { [fileName]: { content: source } },
    settings: { ...SETTINGS, outputSelection: { [fileName]: { [contract]: ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'storageLayout'] } } },
  }
  const findImport = (path: string) => {
    const pkg = path.split('/').slice(0, 2).join('/')
    try {
      const root = dirname(resolveOptional(`${pkg}/package.json`, `Compiling ${fileName}`, pkg))
      return { contents: readFileSync(join(root, path.slice(pkg.length)), 'utf8') }
    } catch (e) {
      return { error: (e as Error).message }
    }
  }
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport })) as {
    errors?: { severity: string; formattedMessage: string }[]
    contracts?: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string }; deployedBytecode: { object: string } }; storageLayout: { storage: StorageSlot[] } }>>
  }
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error')
  const c = output.contracts?.[fileName]?.[contract]
  if (errors.length > 0 || !c) {
    throw new InternalError(`solc ${solc.version()} could not compile ${contract}: ${errors.map((e) => e.formattedMessage).join('\n') || 'no output'}`)
  }
  const artifact: CompiledContract = {
    abi: c.abi,
    bytecode: `0x${c.evm.bytecode.object}`,
    deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
    storageLayout: c.storageLayout.storage,
  }
  mkdirSync(cacheDir(), { recursive: true })
  // Written aside and renamed: concurrent bench runs never read a half-written artifact.
  const tmp = `${cached}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(artifact))
  renameSync(tmp, cached)
  return artifact
}

/** The storage slot of a state variable, by name (from solc's storage layout). */
export function slotOf(contract: CompiledContract, label: string): bigint {
  const entry = contract.storageLayout.find((s) => s.label === label)
  if (!entry) throw new InternalError(`no state variable '${label}' in the storage layout`)
  return BigInt(entry.slot)
}
