// `parallel-evm conformance`: the Ethereum consensus test vectors through the engine, one summary
// line per suite and mode, then the failures. A progress bar on a terminal only.
import { existsSync } from 'node:fs'
import cliProgress from 'cli-progress'
import { runConformance, type ConformanceFailure, type ConformanceMode } from '../conformance.js'
import { UsageError } from './format.js'

export type ConformanceOptions = {
  mode?: ConformanceMode
  threads?: number[]
  skip?: string
  json: boolean
}

const caseText = (c: ConformanceFailure['case']) => (c.data !== undefined ? `d${c.data} g${c.gas} v${c.value}` : c.block !== undefined ? `block ${c.block}` : 'test')

/** Runs the vectors under `paths`; returns the exit code (1 when anything failed). */
export async function conformanceCommand(paths: string[], options: ConformanceOptions): Promise<number> {
  for (const p of paths) if (!existsSync(p)) throw new UsageError(`${p} does not exist`)
  if (options.skip !== undefined && !existsSync(options.skip)) throw new UsageError(`${options.skip} does not exist`)
  const bar =
    !options.json && process.stderr.isTTY
      ? new cliProgress.SingleBar({ format: 'conformance {bar} {value}/{total} files | {file}', clearOnComplete: true }, cliProgress.Presets.shades_classic)
      : undefined
  let started = false
  const began = performance.now()
  const report = await runConformance({
    paths,
    modes: options.mode ? [options.mode] : undefined,
    threads: options.threads,
    skipList: options.skip,
    onFile: ({ done, total, file }) => {
      if (!started) bar?.start(total, 0, { file: '' })
      started = true
      bar?.update(done, { file: file.split(/[\\/]/).slice(-2).join('/') })
    },
  })
  bar?.stop()
  const seconds = (performance.now() - began) / 1000
  if (options.json) {
    console.log(JSON.stringify({ ...report, seconds }))
  } else {
    for (const s of report.summaries) console.log(JSON.stringify(s))
    for (const f of report.failures) {
      console.log(`FAIL ${f.suite} ${f.mode}(${f.threads}) ${f.file} :: ${f.test} [${caseText(f.case)}] ${f.field}: expected ${f.expected}, got ${f.actual}`)
    }
    for (const s of report.skipped) console.log(`SKIP ${s.file} :: ${s.test} (${s.reason})`)
    console.log(`${report.failures.length} failure(s), ${report.skipped.length} skipped test(s), ${seconds.toFixed(1)} s`)
  }
  return report.passed ? 0 : 1
}
