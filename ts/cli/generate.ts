// `parallel-evm generate`: writes generated bench blocks as fixture folders, for `run`, the Rust
// replay example and bench/node-vs-replay.cjs.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { GeneratedBlock } from '../generate.js'
import { cachedWorkload, WORKLOADS, type BenchWorkload } from '../bench/workloads.js'
import { UsageError } from './format.js'

export type GenerateOptions = { txs: number; seed: number; json: boolean }

/** Writes `block.json`, `prestate.json` and `chain.json` into `dir`. */
export function writeFixture(dir: string, g: GeneratedBlock) {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'block.json'), JSON.stringify(g.block))
  writeFileSync(join(dir, 'prestate.json'), JSON.stringify(g.prestate))
  writeFileSync(join(dir, 'chain.json'), JSON.stringify(g.chain))
}

/** The folder name of a saved workload: `<workload>-<txs>-<seed>`. */
export const fixtureName = (workload: string, txs: number, seed: number) => `${workload}-${txs}-${seed}`

export function checkWorkloads(names: string[]): BenchWorkload[] {
  for (const n of names) {
    if (!(WORKLOADS as readonly string[]).includes(n)) throw new UsageError(`unknown workload '${n}' (choose from ${WORKLOADS.join(', ')})`)
  }
  return [...new Set(names)] as BenchWorkload[]
}

export async function generateCommand(workloads: string[], outDir: string, options: GenerateOptions): Promise<number> {
  if (options.txs > 100_000) throw new UsageError('--txs must be from 1 to 100000')
  for (const w of checkWorkloads(workloads)) {
    const g = await cachedWorkload(w, options.txs, options.seed)
    const dir = join(outDir, fixtureName(w, options.txs, options.seed))
    writeFixture(dir, g)
    const gasUsed = Number(BigInt(g.block.gasUsed as string))
    console.log(options.json ? JSON.stringify({ workload: w, name: g.name, dir, txs: g.block.transactions.length, gasUsed }) : `${g.name}: ${dir} (${gasUsed.toLocaleString('en-US')} gas)`)
  }
  return 0
}
