// Small output helpers for the CLI.
import type { Verification } from '../result.js'

/** Bad command-line input: exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError'
}

export const check = (ok: boolean | null) => (ok === null ? 'n/a' : ok ? 'ok' : 'FAILED')

/** The header checks of a run, e.g. `gasUsed ok receiptsRoot ok logsBloom ok` (and
 * `requestsHash`, from Prague, where the requests are known). */
export const headerLine = (v: Verification) =>
  `gasUsed ${check(v.gasUsed)} receiptsRoot ${check(v.receiptsRoot)} logsBloom ${check(v.logsBloom)}` +
  (v.requestsHash === null ? '' : ` requestsHash ${check(v.requestsHash)}`) +
  (v.stateRoot === undefined ? '' : ` stateRoot ${check(v.stateRoot)}`)

export const fmtGas = (gas: number) => gas.toLocaleString('en-US')

/** A plain text table with right-aligned columns after the first. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}
