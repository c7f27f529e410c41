// The bench's heavier tools (solc, contract artifacts, @ethereumjs/vm, chart.js) are optional peer
// dependencies: the library never loads them, and a bench feature that needs a missing one fails
// with the package to install.
import { MissingDependencyError } from '../errors.js'

/** `require(name)`, or a MissingDependencyError naming the package when it is not installed. */
export function requireOptional<T>(name: string, purpose: string, packageName = name.startsWith('@') ? name.split('/').slice(0, 2).join('/') : name.split('/')[0]!): T {
  try {
    return require(name) as T
  } catch (e) {
    const err = e as { code?: string; message?: string }
    if ((err.code === 'MODULE_NOT_FOUND' || err.code === 'ERR_PACKAGE_PATH_NOT_EXPORTED') && err.message?.includes(packageName)) {
      throw new MissingDependencyError(packageName, purpose, { cause: e })
    }
    throw e
  }
}

/** Like `require.resolve`, with the same error for a missing package. */
export function resolveOptional(name: string, purpose: string, packageName: string): string {
  try {
    return require.resolve(name)
  } catch (e) {
    throw new MissingDependencyError(packageName, purpose, { cause: e })
  }
}
