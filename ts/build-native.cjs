// `npm run build:native`: builds the addon into native/ with the release profile, the way releases
// are built. A Linux glibc target built on a Linux x64/arm64 glibc host links against napi-rs's
// cross toolchain (`--use-napi-cross`: gcc with a glibc 2.17 sysroot, fetched once from the npm
// registry into ~/.napi-rs), so the binary needs glibc 2.17, not the build host's glibc. A musl
// target built on a glibc host goes through zig (`--cross-compile`). Anything else (macOS, a musl
// host building for itself) is a plain `napi build`. Extra arguments (`--target <triple>`, ...)
// pass through to `napi build`. PARALLEL_EVM_HOST_TOOLCHAIN=1 skips the cross toolchain (offline
// builds; the binary then needs the host's glibc).
//
// C code (mimalloc, secp256k1, blst, keccak asm) is compiled by a modern compiler against the
// toolchain's glibc 2.17 headers, not by the toolchain's own gcc 4.8 (mimalloc passes flags that
// gcc 4.8 rejects, and old gcc would make that code slower): clang when it is installed (napi
// adds the sysroot flags), else, for the host's own triple, the host's gcc with the sysroot.
// The toolchain's gcc still links, against its glibc 2.17 libraries.
const { spawnSync } = require('node:child_process')
const { readFileSync } = require('node:fs')
const { homedir } = require('node:os')
const { dirname, join } = require('node:path')

const BASE = ['build', '--platform', '--release', '--package', 'parallel-evm-node', '--manifest-path', 'crates/node/Cargo.toml', '--output-dir', 'native', '--no-js', '--dts', 'index.d.ts']
const NAPI_CROSS_TARGETS = ['x86_64-unknown-linux-gnu', 'aarch64-unknown-linux-gnu']

function hostLibc() {
  if (process.platform !== 'linux') return null
  try {
    if (readFileSync('/usr/bin/ldd', 'utf8').includes('musl')) return 'musl'
  } catch {
    // no ldd script: ask Node below
  }
  const report = process.report?.getReport()
  return report?.header?.glibcVersionRuntime ? 'gnu' : 'musl'
}

function hostTarget() {
  return `${{ x64: 'x86_64', arm64: 'aarch64' }[process.arch]}-unknown-linux-${hostLibc()}`
}

function requestedTarget(args) {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--target' || args[i] === '-t') return args[i + 1]
    if (args[i].startsWith('--target=')) return args[i].slice('--target='.length)
  }
  return null
}

function crossFlags(args) {
  if (process.env.PARALLEL_EVM_HOST_TOOLCHAIN === '1') return []
  if (args.some((a) => ['--use-napi-cross', '--cross-compile', '-x', '--use-cross'].includes(a))) return []
  const libc = hostLibc()
  const hostArch = { x64: 'x86_64', arm64: 'aarch64' }[process.arch]
  if (libc === null || !hostArch) return []
  const target = requestedTarget(args) ?? hostTarget()
  if (libc === 'gnu' && NAPI_CROSS_TARGETS.includes(target)) return ['--use-napi-cross']
  if (libc === 'gnu' && target.endsWith('-linux-musl')) return ['--cross-compile']
  return []
}

function onPath(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0
}

// Environment for the C compiler of a --use-napi-cross build (see the header).
function cCompilerEnv(target, cliDir) {
  if (process.env.TARGET_CC || process.env.CC) return {}
  if (onPath('clang')) return { TARGET_CC: 'clang', TARGET_CXX: 'clang++' }
  const hostTriple = `${{ x64: 'x86_64', arm64: 'aarch64' }[process.arch]}-unknown-linux-gnu`
  if (target !== hostTriple || !onPath('gcc')) return {}
  const { version } = require(require.resolve('@napi-rs/cross-toolchain/package.json', { paths: [cliDir] }))
  const sysroot = join(homedir(), '.napi-rs', 'cross-toolchain', version, target, target, 'sysroot')
  const t = target.replace(/-/g, '_')
  return { [`CC_${t}`]: 'gcc', [`CXX_${t}`]: 'g++', [`CFLAGS_${t}`]: `--sysroot=${sysroot}`, [`CXXFLAGS_${t}`]: `--sysroot=${sysroot}` }
}

const extra = process.argv.slice(2)
const cross = crossFlags(extra)
const args = [...BASE, ...cross, ...extra]
const cliPkg = require.resolve('@napi-rs/cli/package.json')
const napi = join(dirname(cliPkg), require(cliPkg).bin.napi)
const env = cross.includes('--use-napi-cross') ? cCompilerEnv(requestedTarget(extra) ?? hostTarget(), dirname(cliPkg)) : {}
console.log(
  `${Object.entries(env)
    .map(([k, v]) => `${k}=${v} `)
    .join('')}napi ${args.join(' ')}`,
)
const r = spawnSync(process.execPath, [napi, ...args], { stdio: 'inherit', env: { ...process.env, ...env } })
process.exit(r.status ?? 1)
