// Loads the native addon: a local build (`npm run build:native` puts it in native/) first, then the
// per-platform npm package, napi-rs style. Fails with a message naming what is missing.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type * as Binding from '../native/index'

export type NativeBinding = typeof Binding
export type NativePreparedBlock = Binding.PreparedBlock
export type NativePreparedState = Binding.PreparedState
export type NativeExecutionOutput = Binding.ExecutionOutput

/** The C library a Linux binary links against: glibc (`gnu`) or musl (Alpine). */
export type Libc = 'gnu' | 'musl'

/** What {@link linuxLibc} reads from `process.report.getReport()`. */
export type ProcessReport = { header?: { glibcVersionRuntime?: string } }

function processReport(): ProcessReport | undefined {
  const report = process.report as (NodeJS.ProcessReport & { excludeNetwork?: boolean }) | undefined
  if (!report) return undefined
  // The network section can take seconds to gather (DNS lookups); the header is all we need.
  const excludeNetwork = report.excludeNetwork
  report.excludeNetwork = true
  try {
    return report.getReport() as ProcessReport
  } finally {
    report.excludeNetwork = excludeNetwork
  }
}

/**
 * The C library of this Linux process: Node's report names the glibc version it runs on, and has
 * none on musl. Without a report, musl's `ldd` script says so.
 */
export function linuxLibc(report: ProcessReport | undefined = processReport()): Libc {
  if (report) return report.header?.glibcVersionRuntime ? 'gnu' : 'musl'
  try {
    return readFileSync('/usr/bin/ldd', 'utf8').includes('musl') ? 'musl' : 'gnu'
  } catch {
    return 'gnu'
  }
}

/** napi-rs platform suffix (`linux-x64-gnu`, `linux-arm64-musl`, `darwin-arm64`, ...), or null when unsupported. */
export function platformSuffix(platform = process.platform, arch = process.arch, libc?: Libc): string | null {
  if (platform === 'darwin' && (arch === 'x64' || arch === 'arm64')) return `darwin-${arch}`
  if (platform === 'linux' && (arch === 'x64' || arch === 'arm64')) return `linux-${arch}-${libc ?? linuxLibc()}`
  return null
}

/** The platforms with a published binary package (`parallel-evm-<suffix>`). */
export const SUPPORTED = ['linux-x64-gnu', 'linux-arm64-gnu', 'linux-x64-musl', 'linux-arm64-musl', 'darwin-x64', 'darwin-arm64']

// The published package holds no Rust sources: a source build happens in a clone.
const BUILD_FROM_SOURCE =
  'To build from source: install Rust (https://rustup.rs), clone https://github.com/parallel-evm/parallel-evm, ' + "run 'npm ci' there (it builds native/ and dist/) and install that folder."

function load(): NativeBinding {
  const suffix = platformSuffix()
  if (!suffix || !SUPPORTED.includes(suffix)) {
    throw new Error(`parallel-evm: no prebuilt native binary for ${process.platform}-${process.arch}${suffix ? ` (${suffix})` : ''}. ` + `Prebuilt: ${SUPPORTED.join(', ')}. ${BUILD_FROM_SOURCE}`)
  }
  const local = join(__dirname, '..', 'native', `parallel-evm.${suffix}.node`)
  const pkg = `parallel-evm-${suffix}`
  const errors: string[] = []
  if (existsSync(local)) {
    try {
      return require(local) as NativeBinding
    } catch (e) {
      errors.push(`${local}: ${(e as Error).message}`)
    }
  }
  try {
    return require(pkg) as NativeBinding
  } catch (e) {
    errors.push(`${pkg}: ${(e as Error).message}`)
  }
  throw new Error(
    `parallel-evm: cannot load the native addon for ${suffix}. Install the optional dependency ` +
      `'${pkg}' (npm skips optional dependencies with --no-optional or a lockfile from another ` +
      `platform). ${BUILD_FROM_SOURCE}\nTried:\n  ${errors.join('\n  ')}`,
  )
}

let cached: NativeBinding | undefined

/** The native binding, loaded on first use so that importing the package never throws. */
export function native(): NativeBinding {
  cached ??= load()
  return cached
}
