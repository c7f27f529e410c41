// Shape checks of node responses: anything unexpected is an RpcResponseError, never used as is.
import { isAddress, isHex, type Address, type Hash, type Hex } from 'viem'
import { RpcResponseError } from '../errors.js'

export function fail(method: string, what: string): never {
  throw new RpcResponseError(method, what)
}

export function object(method: string, value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(method, `${what} is not an object: ${preview(value)}`)
  return value as Record<string, unknown>
}

export function quantity(method: string, value: unknown, what: string): bigint {
  if (typeof value !== 'string' || !/^0x[0-9a-fA-F]+$/.test(value)) fail(method, `${what} is not a hex quantity: ${preview(value)}`)
  return BigInt(value)
}

export function hash(method: string, value: unknown, what: string): Hash {
  if (typeof value !== 'string' || !isHex(value) || value.length !== 66) fail(method, `${what} is not a 32-byte hash: ${preview(value)}`)
  return value.toLowerCase() as Hash
}

export function data(method: string, value: unknown, what: string): Hex {
  if (typeof value !== 'string' || !isHex(value) || value.length % 2 !== 0) fail(method, `${what} is not hex data: ${preview(value)}`)
  return value.toLowerCase() as Hex
}

export function address(method: string, value: unknown, what: string): Address {
  if (typeof value !== 'string' || !isAddress(value, { strict: false })) fail(method, `${what} is not an address: ${preview(value)}`)
  return value.toLowerCase() as Address
}

export function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value)
  return text.length > 120 ? `${text.slice(0, 117)}...` : text
}
