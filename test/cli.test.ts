// The CLI: replay-compatible JSON, readable output, clear failures with non-zero exit codes.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { haveMainnet, mainnetDir, repoRoot } from './helpers.js'

const cli = (...args: string[]) => spawnSync('node', [join(repoRoot, 'dist', 'cli', 'main.js'), ...args], { encoding: 'utf8' })

describe('cli', () => {
  it.skipIf(!haveMainnet)('run --json prints the replay fields', () => {
    const r = cli('run', join(mainnetDir, '4370000'), '--threads', '2', '--mode', 'parallel', '--json', '--repeat', '1')
    expect(r.status).toBe(0)
    const line = JSON.parse(r.stdout)
    expect(line).toMatchObject({ number: 4370000, txs: 97, gasUsed: 6609719, threads: expect.any(Number) })
    expect(line.verified).toEqual({ gasUsed: true, receiptsRoot: true, logsBloom: true, matchesSequential: true })
    for (const k of ['mode', 'seqMs', 'parMs', 'speedup', 'reexecutions', 'reason']) expect(line).toHaveProperty(k)
  })

  it.skipIf(!haveMainnet)('run prints a readable summary for a block.json with --prestate', () => {
    const dir = join(mainnetDir, '46147')
    const r = cli('run', join(dir, 'block.json'), '--prestate', join(dir, 'prestate.json'), '--repeat', '1')
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/block 46147: 1 txs, 21,000 gas/)
    expect(r.stdout).toMatch(/receiptsRoot n\/a/)
  })

  it('rejects bad input with a message and exit code 2', () => {
    const missing = cli('run', '/nonexistent/block')
    expect(missing.status).toBe(2)
    expect(missing.stderr).toMatch(/does not exist/)
    const badMode = cli('run', repoRoot, '--mode', 'fast')
    expect(badMode.status).not.toBe(0)
    expect(badMode.stderr).toMatch(/Allowed choices are auto, parallel, sequential/)
    const badThreads = cli('run', repoRoot, '--threads', 'x')
    expect(badThreads.status).not.toBe(0)
    expect(badThreads.stderr).toMatch(/positive integer/)
  })

  it('reports engine errors for a broken block with its code', () => {
    const r = cli('run', join(repoRoot, 'package.json'), '--prestate', join(repoRoot, 'package.json'), '--json')
    expect(r.status).toBe(1)
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 'INVALID_INPUT' })
  })

  it('bench runs generated blocks and prints a table', () => {
    const r = cli('bench', '--txs', '32', '--max-fixtures', '0', '--time', '5', '--threads', '1,2')
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/independent ×32/)
    expect(r.stdout).toMatch(/chain ×32/)
    expect(r.stdout).toMatch(/best speedup/)
  })
})
