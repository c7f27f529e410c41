// The package as users get it: packed like the release workflow packs it, installed from the
// tarballs into a fresh project (from npm's cache where it can), and used from ESM and CommonJS.
import { execFileSync, spawnSync } from 'node:child_process'
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot } from './helpers.js'

const PLATFORM = 'linux-x64-gnu'
const supported = process.platform === 'linux' && process.arch === 'x64'
const npm = (args: string[], cwd: string) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })

function pack(dir: string, dest: string): string {
  const out = npm(['pack', '--ignore-scripts', '--json', '--pack-destination', dest], dir)
  return join(dest, (JSON.parse(out) as { filename: string }[])[0]!.filename)
}

describe.skipIf(!supported)('packed package', () => {
  let tmp: string
  let project: string

  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'parallel-evm-pack-'))
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'))

    // Platform package: npm/<platform> plus the binary, as `napi artifacts` assembles it.
    const platformDir = join(tmp, 'platform')
    cpSync(join(repoRoot, 'npm', PLATFORM), platformDir, { recursive: true })
    copyFileSync(join(repoRoot, 'native', `parallel-evm.${PLATFORM}.node`), join(platformDir, `parallel-evm.${PLATFORM}.node`))
    const platformTgz = pack(platformDir, tmp)

    // Main package with the optionalDependencies that `napi pre-publish` adds at release.
    const mainDir = join(tmp, 'main')
    mkdirSync(mainDir)
    for (const f of ['dist', 'README.md']) cpSync(join(repoRoot, f), join(mainDir, f), { recursive: true })
    mkdirSync(join(mainDir, 'native'))
    copyFileSync(join(repoRoot, 'native', 'index.d.ts'), join(mainDir, 'native', 'index.d.ts'))
    const platforms = ['linux-x64-gnu', 'linux-arm64-gnu', 'linux-x64-musl', 'linux-arm64-musl', 'darwin-x64', 'darwin-arm64']
    pkg.optionalDependencies = Object.fromEntries(platforms.map((p) => [`parallel-evm-${p}`, pkg.version]))
    delete pkg.scripts
    delete pkg.devDependencies
    writeFileSync(join(mainDir, 'package.json'), JSON.stringify(pkg, null, 2))
    const mainTgz = pack(mainDir, tmp)

    project = join(tmp, 'project')
    mkdirSync(project)
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, version: '1.0.0' }))
    // Runtime dependencies from npm's cache where it has them (`npm ci` fills it with tarballs,
    // but not always with the registry metadata that resolving a range needs: a strict --offline
    // install failed on a fresh CI machine); the other platforms' optional packages are skipped,
    // as npm does on a real install.
    npm(['install', '--prefer-offline', '--no-audit', '--no-fund', mainTgz, platformTgz], project)
  }, 180_000)

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  const script = `
    const g = await generateBlock('independent', 20)
    const r = await executeBlock({ block: g.block, state: g.prestate, chain: g.chain, threads: 2, mode: 'parallel' })
    let code
    try { await executeBlock({ block: new Uint8Array([123]), state: g.prestate }) } catch (e) { code = e instanceof ParallelEvmError && e.code }
    console.log(JSON.stringify({ gasUsed: r.gasUsed.toString(), receipts: r.receipts.length, verified: r.verification.gasUsed, code }))`

  const expected = { gasUsed: '420000', receipts: 20, verified: true, code: 'INVALID_INPUT' }

  it('installs the binary from the platform package', () => {
    const installed = JSON.parse(readFileSync(join(project, 'node_modules', `parallel-evm-${PLATFORM}`, 'package.json'), 'utf8'))
    expect(installed.name).toBe(`parallel-evm-${PLATFORM}`)
  })

  it('runs a block from ESM', () => {
    writeFileSync(join(project, 'esm.mjs'), `import { executeBlock, generateBlock, ParallelEvmError } from 'parallel-evm'\n${script}`)
    const out = execFileSync('node', ['esm.mjs'], { cwd: project, encoding: 'utf8' })
    expect(JSON.parse(out)).toEqual(expected)
  })

  it('runs a block from CommonJS', () => {
    writeFileSync(join(project, 'cjs.cjs'), `const { executeBlock, generateBlock, ParallelEvmError } = require('parallel-evm');\n(async () => {${script}})()`)
    const out = execFileSync('node', ['cjs.cjs'], { cwd: project, encoding: 'utf8' })
    expect(JSON.parse(out)).toEqual(expected)
  })

  it('ships the CLI', () => {
    const out = execFileSync(join(project, 'node_modules', '.bin', 'parallel-evm'), ['bench', '--txs', '16', '--max-fixtures', '0', '--time', '5', '--threads', '1,2', '--json'], {
      cwd: project,
      encoding: 'utf8',
    })
    const rows = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(rows).toHaveLength(3)
    expect(rows.every((r) => r.verified)).toBe(true)
  })

  it('bench names the optional package a requested workload needs', () => {
    // The bench's compiler and contracts are optional peers, not installed with the package.
    const r = spawnSync(join(project, 'node_modules', '.bin', 'parallel-evm'), ['bench', '--workloads', 'erc20', '--max-fixtures', '0'], { cwd: project, encoding: 'utf8' })
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/MISSING_DEPENDENCY: .*npm install --save-dev solc/)
  })
})
