// The loader picks the binary package of the platform it runs on: glibc or musl on Linux, and says
// which platforms have a published binary.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { linuxLibc, platformSuffix, SUPPORTED } from '../dist/native.js'
import { repoRoot } from './helpers.js'

// Node's process report on Alpine (node:20-alpine) has no glibc version in its header.
const muslReport = { header: { osName: 'Linux', glibcVersionCompiler: undefined } }
const glibcReport = { header: { glibcVersionRuntime: '2.17', glibcVersionCompiler: '2.28' } }

describe('native platform', () => {
  it('reads musl from a report without a glibc version, glibc from one with it', () => {
    expect(linuxLibc(muslReport)).toBe('musl')
    expect(linuxLibc(glibcReport)).toBe('gnu')
  })

  it('picks the musl package on a musl system, and it is supported', () => {
    for (const arch of ['x64', 'arm64'] as const) {
      const suffix = platformSuffix('linux', arch, linuxLibc(muslReport))
      expect(suffix).toBe(`linux-${arch}-musl`)
      expect(SUPPORTED).toContain(suffix)
      expect(platformSuffix('linux', arch, linuxLibc(glibcReport))).toBe(`linux-${arch}-gnu`)
    }
  })

  it('has no suffix for platforms without a binary', () => {
    expect(platformSuffix('win32', 'x64')).toBeNull()
    expect(platformSuffix('linux', 'riscv64')).toBeNull()
    expect(platformSuffix('darwin', 'arm64')).toBe('darwin-arm64')
  })

  it('this process: a Linux glibc runtime is reported as gnu', () => {
    if (process.platform !== 'linux') return
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
    const glibc = report?.header?.glibcVersionRuntime
    expect(linuxLibc()).toBe(glibc ? 'gnu' : 'musl')
  })

  it('every supported platform has a package under npm/ with matching os, cpu and libc, and a napi target', () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'))
    const triple: Record<string, string> = {
      'linux-x64-gnu': 'x86_64-unknown-linux-gnu',
      'linux-arm64-gnu': 'aarch64-unknown-linux-gnu',
      'linux-x64-musl': 'x86_64-unknown-linux-musl',
      'linux-arm64-musl': 'aarch64-unknown-linux-musl',
      'darwin-x64': 'x86_64-apple-darwin',
      'darwin-arm64': 'aarch64-apple-darwin',
    }
    expect([...pkg.napi.targets].sort()).toEqual(SUPPORTED.map((s) => triple[s]).sort())
    for (const suffix of SUPPORTED) {
      const platform = JSON.parse(readFileSync(join(repoRoot, 'npm', suffix, 'package.json'), 'utf8'))
      const [os, cpu, libc] = suffix.split('-')
      expect(platform.name).toBe(`parallel-evm-${suffix}`)
      expect(platform.main).toBe(`parallel-evm.${suffix}.node`)
      expect(platform.os).toEqual([os])
      expect(platform.cpu).toEqual([cpu])
      expect(platform.libc).toEqual(libc ? [libc === 'gnu' ? 'glibc' : 'musl'] : undefined)
      expect(platform.version).toBe(pkg.version)
    }
  })
})
