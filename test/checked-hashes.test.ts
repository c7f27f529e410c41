// CheckedHashes: proof nodes and code are hashed once, then compared as strings; a value that
// does not hash to the hash asked about never passes, whatever was checked before.
import { keccak256, type Hex } from 'viem'
import { describe, expect, it } from 'vitest'
import { CheckedHashes } from '../dist/rpc/checked-hashes.js'

describe('CheckedHashes', () => {
  const a = '0x6001600201' as Hex
  const b = '0x600360040a' as Hex

  it('passes a value that hashes to the hash, and only such a value', () => {
    const checked = new CheckedHashes(1000)
    expect(checked.get(keccak256(a))).toBeUndefined()
    expect(checked.matches(a, keccak256(a))).toBe(true)
    expect(checked.get(keccak256(a))).toBe(a)
    // Remembered for one hash, still refused for another, and another value refused for it.
    expect(checked.matches(a, keccak256(b))).toBe(false)
    expect(checked.matches(b, keccak256(a))).toBe(false)
    expect(checked.get(keccak256(b))).toBeUndefined()
  })

  it('holds at most its budget of characters, least recently used leaving first', () => {
    const checked = new CheckedHashes(a.length + b.length)
    const c = '0x60056006' as Hex
    checked.matches(a, keccak256(a))
    checked.matches(b, keccak256(b))
    checked.get(keccak256(a))
    checked.matches(c, keccak256(c))
    expect(checked.get(keccak256(b))).toBeUndefined()
    expect(checked.get(keccak256(a))).toBe(a)
    expect(checked.get(keccak256(c))).toBe(c)
    // Still checked for real once forgotten.
    expect(checked.matches(b, keccak256(b))).toBe(true)
  })
})
