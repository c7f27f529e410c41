// `parallel-evm conformance` on a couple of consensus test vectors: summaries per suite and mode,
// failures named with their field and exit code 1, bad input with exit code 2.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runConformance } from '../ts/index.js'
import { repoRoot, sharedDir } from './helpers.js'

const vectors = join(sharedDir, 'fixtures', 'ethereum-tests')
const haveVectors = existsSync(vectors)
if (!haveVectors) console.warn(`[parallel-evm tests] ${vectors} not found: conformance CLI tests are skipped`)
const stateTest = join(vectors, 'GeneralStateTests', 'stExample', 'add11.json')
const blockTest = join(vectors, 'BlockchainTests', 'ValidBlocks', 'bcExample', 'basefeeExample.json')

const cli = (...args: string[]) => spawnSync('node', [join(repoRoot, 'dist', 'cli', 'main.js'), 'conformance', ...args], { encoding: 'utf8' })
const tmp = mkdtempSync(join(tmpdir(), 'pevm-conformance-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

describe.skipIf(!haveVectors)('conformance', () => {
  it('runs a state test and a blockchain test in sequential and parallel modes', () => {
    const r = cli(stateTest, blockTest, '--mode', 'parallel', '--threads', '1,2', '--json')
    expect(r.status).toBe(0)
    const report = JSON.parse(r.stdout)
    expect(report.failures).toEqual([])
    const suites = report.summaries.map((s: { suite: string; threads: number }) => `${s.suite}/${s.threads}`)
    expect(suites.sort()).toEqual(['BlockchainTests/1', 'BlockchainTests/2', 'GeneralStateTests/1', 'GeneralStateTests/2'])
    for (const s of report.summaries) {
      expect(s).toMatchObject({ mode: 'parallel', failed: 0, skipped: 0 })
      expect(s.passed).toBeGreaterThan(0)
      // Forced parallel: Block-STM ran the one-transaction blocks.
      expect(s.engines.blockStm).toBeGreaterThan(0)
    }
  })

  it('prints one summary line per suite and mode without --json', () => {
    const r = cli(stateTest)
    expect(r.status).toBe(0)
    const lines = r.stdout.trim().split('\n')
    const summaries = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
    // sequential, parallel at 1, 2, 4, 8, auto, groups and contended at 2, 4, 8
    expect(summaries.map((s) => `${s.mode}/${s.threads}`)).toEqual([
      'sequential/1',
      'parallel/1',
      'parallel/2',
      'parallel/4',
      'parallel/8',
      'auto/2',
      'auto/4',
      'auto/8',
      'groups/2',
      'groups/4',
      'groups/8',
      'contended/2',
      'contended/4',
      'contended/8',
    ])
    expect(lines.at(-1)).toMatch(/^0 failure\(s\), 0 skipped test\(s\)/)
  })

  it('names the failing case and field, and exits with 1', () => {
    const test = JSON.parse(readFileSync(stateTest, 'utf8'))
    const name = Object.keys(test)[0]!
    const wrong = '0x' + '11'.repeat(32)
    test[name].post.Cancun[0].hash = wrong
    const file = join(tmp, 'broken.json')
    writeFileSync(file, JSON.stringify(test))
    const r = cli(file, '--mode', 'sequential', '--json')
    expect(r.status).toBe(1)
    const report = JSON.parse(r.stdout)
    expect(report.summaries[0]).toMatchObject({ suite: 'GeneralStateTests', mode: 'sequential', passed: 0, failed: 1 })
    expect(report.failures[0]).toMatchObject({ test: name, case: { data: 0, gas: 0, value: 0 }, field: 'hash', expected: wrong })
  })

  it('leaves out what the skip list names, with its reason', async () => {
    const skip = join(tmp, 'skip.txt')
    writeFileSync(skip, 'stExample/add11.json too slow for this test\n')
    const report = await runConformance({ paths: [stateTest], modes: ['sequential'], skipList: skip })
    expect(report.passed).toBe(true)
    expect(report.summaries[0]).toMatchObject({ passed: 0, skipped: 1 })
    expect(report.skipped[0]!.reason).toBe('too slow for this test')
  })

  it('rejects bad input with exit code 2', () => {
    expect(cli(join(tmp, 'missing.json')).status).toBe(2)
    const badMode = cli(stateTest, '--mode', 'fast')
    expect(badMode.status).not.toBe(0)
    expect(badMode.stderr).toMatch(/Allowed choices are sequential, parallel, auto, groups, contended/)
    const noReason = join(tmp, 'bad-skip.txt')
    writeFileSync(noReason, 'stExample/add11.json\n')
    const r = cli(stateTest, '--skip', noReason)
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/INVALID_INPUT: .*has no reason/)
  })
})
