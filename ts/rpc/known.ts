// The part of a block's pre-state fetched so far, handed to the engine as a partial state: keys
// it lacks are reported back by the execution instead of being read as absent.
import { numberToHex, pad, type Address, type Hash, type Hex } from 'viem'
import { jsonBytes } from '../block.js'
import { fromNative } from '../errors.js'
import { native } from '../native.js'
import type { PreparedState } from '../state.js'

export type KnownAccount = {
  balance: bigint
  nonce: bigint
  /** '0x' when the account has no code. */
  code: Hex
  /** Slot (32 bytes, lower case) -> value. */
  storage: Map<Hex, Hex>
  /** Every slot is known (empty storage root): unlisted slots are zero. */
  storageComplete: boolean
}

/** Keys an execution needed and the state lacked (the engine's report). */
export type MissingKeys = {
  accounts: Address[]
  storage: Record<Address, Hash[]>
  blockHashes: number[]
}

export const slotKey = (slot: Hex): Hex => pad(slot.toLowerCase() as Hex, { size: 32 })

export class KnownState {
  readonly accounts = new Map<Address, KnownAccount>()
  /** Accounts known not to exist. */
  readonly absent = new Set<Address>()
  readonly blockHashes = new Map<bigint, Hash>()

  hasAccount(address: Address): boolean {
    return this.accounts.has(address) || this.absent.has(address)
  }

  hasSlot(address: Address, slot: Hex): boolean {
    if (this.absent.has(address)) return true
    const a = this.accounts.get(address)
    return a !== undefined && (a.storageComplete || a.storage.has(slot))
  }

  setAccount(address: Address, account: Omit<KnownAccount, 'storage'> & { storage?: Map<Hex, Hex> }): void {
    const existing = this.accounts.get(address)
    this.absent.delete(address)
    this.accounts.set(address, { ...account, storage: existing?.storage ?? account.storage ?? new Map() })
  }

  setAbsent(address: Address): void {
    this.accounts.delete(address)
    this.absent.add(address)
  }

  /** Records a slot of an account already recorded (slots of an absent account are zero). */
  setSlot(address: Address, slot: Hex, value: Hex): void {
    this.accounts.get(address)?.storage.set(slot, value)
  }

  /** The JSON the engine takes: prestate, block hashes and `{ absent, completeStorage }`. */
  toJson(): { prestate: Buffer; blockHashes: Buffer; knowledge: Buffer } {
    const prestate: Record<string, unknown> = {}
    for (const [address, a] of this.accounts) {
      prestate[address] = {
        balance: numberToHex(a.balance),
        nonce: numberToHex(a.nonce),
        ...(a.code !== '0x' ? { code: a.code } : {}),
        storage: Object.fromEntries(a.storage),
      }
    }
    const knowledge = {
      absent: [...this.absent],
      completeStorage: [...this.accounts].filter(([, a]) => a.storageComplete).map(([addr]) => addr),
    }
    const hashes = Object.fromEntries([...this.blockHashes].map(([n, h]) => [n.toString(), h]))
    return { prestate: jsonBytes(prestate), blockHashes: jsonBytes(hashes), knowledge: jsonBytes(knowledge) }
  }

  /** Keys held (accounts, absent accounts, slots). */
  get size(): number {
    let n = this.absent.size
    for (const a of this.accounts.values()) n += 1 + a.storage.size
    return n
  }

  clear(): void {
    this.accounts.clear()
    this.absent.clear()
    this.blockHashes.clear()
  }

  /** The engine's partial state for the next round. */
  async prepare(): Promise<PreparedState> {
    const { prestate, blockHashes, knowledge } = this.toJson()
    try {
      return await native().prepareState(prestate, blockHashes, knowledge)
    } catch (e) {
      throw fromNative(e)
    }
  }
}
