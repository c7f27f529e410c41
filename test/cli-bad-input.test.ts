// Bad input through the CLI: a typed code per block, exit 1 for a block that fails, exit 2 for
// bad paths, never a crash or a hang.
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { executeBlock, generateBlock, type GeneratedBlock, type RpcBlock } from '../dist/index.js'
import { repoRoot } from './helpers.js'

// The receipts root of no receipts (the empty trie's root).
const emptyBlock = (g: GeneratedBlock): RpcBlock => ({
  ...g.block,
  transactions: [],
  gasUsed: '0x0',
  receiptsRoot: '0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421',
})

const cli = (...args: string[]) => spawnSync('node', [join(repoRoot, 'dist', 'cli', 'main.js'), ...args], { encoding: 'utf8', timeout: 30_000 })

describe('cli bad input', () => {
  let g: GeneratedBlock
  let root: string
  /** A fixture folder holding these files (objects are written as JSON). */
  const fixture = (name: string, files: Record<string, unknown>) => {
    const dir = join(root, name)
    mkdirSync(dir, { recursive: true })
    for (const [file, content] of Object.entries(files)) {
      writeFileSync(join(dir, file), typeof content === 'string' ? content : JSON.stringify(content))
    }
    return dir
  }
  beforeAll(async () => {
    g = await generateBlock('independent', 3)
    // Generated headers carry no receipts root: take the engine's, so that valid blocks verify.
    const r = await executeBlock({ block: g.block, state: g.prestate, chain: g.chain })
    g.block.receiptsRoot = r.receiptsRoot
    root = mkdtempSync(join(tmpdir(), 'parallel-evm-cli-'))
  })

  const cases: { name: string; files: (g: GeneratedBlock) => Record<string, unknown>; status: number; code?: string }[] = [
    { name: 'a valid block', files: (g) => ({ 'block.json': g.block, 'prestate.json': g.prestate, 'chain.json': g.chain }), status: 0 },
    { name: 'truncated block.json', files: (g) => ({ 'block.json': JSON.stringify(g.block).slice(0, 300), 'prestate.json': g.prestate, 'chain.json': g.chain }), status: 1, code: 'INVALID_INPUT' },
    { name: 'malformed prestate.json', files: (g) => ({ 'block.json': g.block, 'prestate.json': '{"0x', 'chain.json': g.chain }), status: 1, code: 'INVALID_INPUT' },
    { name: 'unknown hardfork in chain.json', files: (g) => ({ 'block.json': g.block, 'prestate.json': g.prestate, 'chain.json': { hardfork: 'atlantis' } }), status: 1, code: 'INVALID_INPUT' },
    {
      name: 'a transaction with a nonce too high',
      files: (g) => ({ 'block.json': { ...g.block, transactions: g.block.transactions.map((t, i) => (i === 1 ? { ...t, nonce: '0x7' } : t)) }, 'prestate.json': g.prestate, 'chain.json': g.chain }),
      status: 1,
      code: 'INVALID_TRANSACTION',
    },
    { name: 'an empty block', files: (g) => ({ 'block.json': emptyBlock(g), 'prestate.json': {}, 'chain.json': g.chain }), status: 0 },
  ]

  for (const c of cases) {
    it(c.name, () => {
      const dir = fixture(c.name.replace(/\W+/g, '-'), c.files(g))
      const r = cli('run', dir, '--json', '--repeat', '1', '--threads', '2')
      expect(r.signal, r.stderr).toBeNull()
      expect(r.status, r.stderr).toBe(c.status)
      const line = JSON.parse(r.stdout.trim()) as { code?: string; error?: string; verified?: Record<string, boolean> }
      if (c.code) {
        expect(line.code).toBe(c.code)
        expect(line.error).toBeTruthy()
      } else {
        expect(line.verified).toMatchObject({ gasUsed: true, matchesSequential: true })
      }
    })
  }

  it('a folder without block.json exits 2 with a message', () => {
    const r = cli('run', fixture('empty-folder', {}))
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/holds no block.json/)
  })
})
