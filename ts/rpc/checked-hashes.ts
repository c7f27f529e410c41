// Values already checked against their keccak256, by hash. A range replay checks the same bytes
// again and again (every proof at one parent block starts with the same state-root node, and a
// token's code and storage-root node come back with each of its proofs); keccak in JS is what
// those checks cost, so each value is hashed once and later compared as a string.
import { type Hash, type Hex, keccak256 } from 'viem'

export class CheckedHashes {
  readonly #byHash = new Map<Hash, Hex>()
  #chars = 0

  /** `budgetChars`: the most hex characters held; the least recently used leave first. */
  constructor(private readonly budgetChars: number) {}

  /** A value known to hash to `hash`, or undefined. */
  get(hash: Hash): Hex | undefined {
    const value = this.#byHash.get(hash)
    if (value !== undefined) {
      this.#byHash.delete(hash)
      this.#byHash.set(hash, value)
    }
    return value
  }

  /** Whether keccak256(value) is `hash` (hashed only when this value was not checked before). */
  matches(value: Hex, hash: Hash): boolean {
    if (this.get(hash) === value) return true
    if (keccak256(value) !== hash) return false
    this.#remember(hash, value)
    return true
  }

  #remember(hash: Hash, value: Hex): void {
    if (value.length > this.budgetChars) return
    const old = this.#byHash.get(hash)
    if (old !== undefined) this.#chars -= old.length
    this.#byHash.set(hash, value)
    this.#chars += value.length
    for (const [h, v] of this.#byHash) {
      if (this.#chars <= this.budgetChars) break
      this.#byHash.delete(h)
      this.#chars -= v.length
    }
  }
}
