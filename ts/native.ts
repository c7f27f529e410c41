// Loads the native addon: a local build (`npm run build:native` puts it in native/) first, then the
// per-platform npm package, napi-rs style. Fails with a message naming what is missing.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type * as Binding from '../native/index'

export type NativeBinding = typeof Binding
export type NativePreparedBlock = Binding.PreparedBlock
export type NativePreparedState = Binding.PreparedState
export type NativeExecutionOutput = Binding.ExecutionOutput

/** napi-rs platform suffix (`linux-x64-gnu`, `darwin-arm64`, ...), or null when unsupported. */
export function platformSuffix(platform = process.platform, arch = process.arch): string | null {
  if (platform === 'darwin' && (arch === 'x64' || arch === 'arm64')) return `darwin-${arch}`
  if (platform === 'linux' && (arch === 'x64' || arch === 'arm64')) {
    // Only glibc builds are published; musl (Alpine) has no package yet.
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
    return report?.header?.glibcVersionRuntime ? `linux-${arch}-gnu` : `linux-${arch}-musl`
  }
  return null
}

const SUPPORTED = ['linux-x64-gnu', 'linux-arm64-gnu', 'darwin-x64', 'darwin-arm64']

function load(): NativeBinding {
  const suffix = platformSuffix()
  if (!suffix || !SUPPORTED.includes(suffix)) {
    throw new Error(
      `parallel-evm: no native binary for ${process.platform}-${process.arch}${suffix ? ` (${suffix})` : ''}. ` +
        `Supported: ${SUPPORTED.join(', ')}. Build from source with Rust: npm run build:native`,
    )
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
      `platform) or build it from source with 'npm run build:native'.\nTried:\n  ${errors.join('\n  ')}`,
  )
}

let cached: NativeBinding | undefined

/** The native binding, loaded on first use so that importing the package never throws. */
export function native(): NativeBinding {
  cached ??= load()
  return cached
}
