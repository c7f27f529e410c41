// Where the shared fixtures are: <repo>/../shared, or $PARALLEL_EVM_SHARED.
import { existsSync, readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'

export const repoRoot = resolve(__dirname, '..')
export const sharedDir = process.env.PARALLEL_EVM_SHARED ?? resolve(repoRoot, '../shared')
export const mainnetDir = join(sharedDir, 'fixtures', 'mainnet')
export const haveMainnet = existsSync(mainnetDir)

if (!haveMainnet) console.warn(`[parallel-evm tests] ${mainnetDir} not found: mainnet fixture suites are skipped`)

export function mainnetBlocks(): string[] {
  if (!haveMainnet) return []
  return readdirSync(mainnetDir)
    .filter((d) => existsSync(join(mainnetDir, d, 'block.json')))
    .sort((a, b) => Number(a) - Number(b))
}
