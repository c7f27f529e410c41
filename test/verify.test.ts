// verifyBlock on the mainnet fixtures: every block passes; altered headers, receipts and
// pre-states fail with the right check named; the verify CLI.
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { executeBlock, InvalidInputError, loadFixture, prepareFixture, verifyBlock, type Check } from '../dist/index.js'
import { haveMainnet, mainnetBlocks, mainnetDir, repoRoot } from './helpers.js'

// Plain output whatever the environment asks for (the assertions read the table's text).
const env = { ...process.env, FORCE_COLOR: '', NO_COLOR: '1' }
const cli = (...args: string[]) => spawnSync('node', [join(repoRoot, 'dist', 'cli', 'main.js'), ...args], { encoding: 'utf8', env })
const statusOf = (checks: Check[]) => Object.fromEntries(checks.map((c) => [c.name, c.status]))

describe.skipIf(!haveMainnet)('verifyBlock: mainnet fixtures', () => {
  const blocks = mainnetBlocks()

  it.each(blocks)('block %s passes every applicable check, parallel matching sequential', async (n) => {
    const { block, state } = await prepareFixture(join(mainnetDir, n))
    const result = await executeBlock({ block, state, threads: 2 })
    const report = await verifyBlock({ block, result, state, crossCheck: true, threads: 2 })
    expect(report.number).toBe(BigInt(n))
    expect(statusOf(report.checks)).toMatchObject({
      gasUsed: 'passed',
      receiptsRoot: Number(n) >= 4_370_000 ? 'passed' : 'not-applicable',
      logsBloom: 'passed',
      // prestateTracer fixtures hold only the touched accounts.
      stateRoot: 'not-applicable',
      cumulativeGasUsed: 'not-applicable',
    })
    expect(['passed', 'not-applicable']).toContain(statusOf(report.checks).crossCheck)
    expect(report.passed).toBe(true)
  })

  it('an altered header fails the check of that field, with expected and actual values', async () => {
    const fx = await loadFixture(join(mainnetDir, '4370000'))
    const cases = [
      ['gasUsed', { gasUsed: '0x1' }],
      ['receiptsRoot', { receiptsRoot: `0x${'11'.repeat(32)}` }],
      ['logsBloom', { logsBloom: `0x${'ff'.repeat(256)}` }],
    ] as const
    for (const [name, patch] of cases) {
      const block = { ...fx.block, ...patch }
      const result = await executeBlock({ block, state: fx.prestate, blockHashes: fx.blockHashes, mode: 'sequential' })
      const report = await verifyBlock({ block, result })
      const failed = report.checks.filter((c) => c.status === 'failed')
      expect(
        failed.map((c) => c.name),
        name,
      ).toEqual([name, 'blockHash'])
      expect(failed[0]!.expected).toBe(name === 'gasUsed' ? '1' : patch[name as keyof typeof patch])
      expect(failed[0]!.actual).not.toBe(failed[0]!.expected)
      expect(report.passed).toBe(false)
    }
  })

  it('expected receipts: per-transaction cumulative gas, first differing transaction named', async () => {
    const { block, state } = await prepareFixture(join(mainnetDir, '4370000'))
    const result = await executeBlock({ block, state })
    const good = result.receipts.map((r) => ({ cumulativeGasUsed: `0x${r.cumulativeGasUsed.toString(16)}` as const }))
    const ok = await verifyBlock({ block, result, expectedReceipts: good })
    expect(ok.checks.find((c) => c.name === 'cumulativeGasUsed')!.status).toBe('passed')
    const bad = good.map((r, i) => (i >= 40 ? { cumulativeGasUsed: BigInt(r.cumulativeGasUsed) + 1n } : r))
    const report = await verifyBlock({ block, result, expectedReceipts: bad })
    expect(report.checks.find((c) => c.name === 'cumulativeGasUsed')).toMatchObject({ status: 'failed', txIndex: 40 })
    expect(report.passed).toBe(false)
    const short = await verifyBlock({ block, result, expectedReceipts: good.slice(1) })
    expect(short.checks.find((c) => c.name === 'cumulativeGasUsed')!.status).toBe('failed')
  })

  it('a result from an altered pre-state fails the cross-check at the account that differs', async () => {
    const fx = await loadFixture(join(mainnetDir, '12459406'))
    const sender = (fx.block.transactions[0] as { from: string }).from.toLowerCase()
    const key = Object.keys(fx.prestate).find((a) => a.toLowerCase() === sender) as `0x${string}`
    const richer = { ...fx.prestate, [key]: { ...fx.prestate[key], balance: BigInt(fx.prestate[key]!.balance as string) + 1n } }
    const wrong = await executeBlock({ block: fx.block, state: richer, blockHashes: fx.blockHashes, mode: 'parallel', threads: 2 })
    const report = await verifyBlock({ block: fx.block, result: wrong, state: fx.prestate, blockHashes: fx.blockHashes, crossCheck: true })
    const cross = report.checks.find((c) => c.name === 'crossCheck')!
    expect(cross.status).toBe('failed')
    expect(cross.location!.toLowerCase()).toBe(`statediff[${sender}].balance`)
    expect(BigInt(cross.actual!) - BigInt(cross.expected!)).toBe(1n)
    // The header checks cannot see a balance: only the cross-check does.
    expect(report.checks.filter((c) => c.status === 'failed').map((c) => c.name)).toEqual(['crossCheck'])
  })

  it('rejects misuse with typed errors', async () => {
    const { block, state } = await prepareFixture(join(mainnetDir, '46147'))
    const result = await executeBlock({ block, state })
    await expect(verifyBlock({ block, result: { ...result } })).rejects.toBeInstanceOf(InvalidInputError)
    await expect(verifyBlock({ block, result, fullState: true })).rejects.toThrow(/fullState needs the pre-state/)
    const other = await prepareFixture(join(mainnetDir, '4370000'))
    await expect(verifyBlock({ block: other.block, result })).rejects.toThrow(/not of the given block/)
    // A prestateTracer pre-state is not the full state: the engine refuses to call it one.
    const big = await prepareFixture(join(mainnetDir, '4370000'))
    const r2 = await executeBlock({ block: big.block, state: big.state })
    const outcome = await verifyBlock({ block: big.block, result: r2, state: big.state, fullState: true }).then(
      (r) => r.checks.find((c) => c.name === 'stateRoot')!.status,
      (e: { code: string }) => e.code,
    )
    expect(['failed', 'STATE_ERROR']).toContain(outcome)
  })
})

describe.skipIf(!haveMainnet)('verify CLI', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'pevm-verify-'))
  afterAll(() => rmSync(tmp, { recursive: true, force: true }))

  it('verify --json --cross-check on one block', () => {
    const r = cli('verify', join(mainnetDir, '4370000'), '--json', '--cross-check', '--threads', '2')
    expect(r.status, r.stderr).toBe(0)
    const line = JSON.parse(r.stdout)
    expect(line).toMatchObject({ number: 4370000, passed: true })
    expect(line.checks.map((c: Check) => c.name)).toEqual([
      'gasUsed',
      'receiptsRoot',
      'logsBloom',
      'requestsHash',
      'stateRoot',
      'transactionsRoot',
      'withdrawalsRoot',
      'blockHash',
      'signatures',
      'cumulativeGasUsed',
      'crossCheck',
    ])
  })

  it('verify prints a table and exits 1 naming the altered check', () => {
    const dir = join(tmp, '4370000')
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir)
    const block = JSON.parse(readFileSync(join(mainnetDir, '4370000', 'block.json'), 'utf8'))
    writeFileSync(join(dir, 'block.json'), JSON.stringify({ ...block, receiptsRoot: `0x${'22'.repeat(32)}` }))
    copyFileSync(join(mainnetDir, '4370000', 'prestate.json'), join(dir, 'prestate.json'))
    const r = cli('verify', dir)
    expect(r.status).toBe(1)
    expect(r.stdout).toMatch(/block 4370000 \(97 txs\).*FAILED/)
    expect(r.stdout).toMatch(/receiptsRoot\s+FAILED\s+0x222222222222…22222222/)
    expect(r.stdout).toMatch(/gasUsed\s+passed\s+6609719\s+6609719/)
    expect(r.stdout).toMatch(/stateRoot\s+n\/a/)
  })

  it('verify over the whole fixture folder prints a summary', () => {
    const r = cli('verify', mainnetDir, '--threads', '2')
    expect(r.status, r.stdout + r.stderr).toBe(0)
    const n = mainnetBlocks().length
    expect(r.stdout).toContain(`${n}/${n} blocks passed`)
  })

  it('usage errors exit 2', () => {
    expect(cli('verify', '/nonexistent').status).toBe(2)
    expect(cli('verify', mainnetDir, '--receipts', 'x.json').status).toBe(2)
  })
})
