// The native boundary: panics become Errors, memory stays bounded over many executions, worker
// threads can load and drop the addon, and concurrent calls give the results of serial ones.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { generateBlock, InternalError, prepareBlock, prepareState, type ExecutionMode } from '../dist/index.js'
import { __debugPanic, executeNative } from '../dist/execute.js'
import { repoRoot } from './helpers.js'

describe('native boundary', () => {
  it('a Rust panic rejects with an InternalError, every time, and the engine keeps working', async () => {
    for (let i = 0; i < 50; i++) {
      const e = await __debugPanic().then(
        () => undefined,
        (err: unknown) => err,
      )
      expect(e).toBeInstanceOf(InternalError)
      expect((e as InternalError).code).toBe('INTERNAL_ERROR')
      expect((e as InternalError).details).toMatch(/panic in the engine: forced panic/)
    }
    const g = await generateBlock('independent', 3)
    const r = await executeNative({ block: g.block, state: g.prestate, chain: g.chain })
    expect(JSON.parse(r.summary).gasUsed).toBe('0xf618')
  })

  it('memory stays bounded over 10,000 executions in one process', () => {
    // A fresh process, so that nothing else the test runner holds moves its RSS.
    const script = `
      const { executeBlock, generateBlock, prepareBlock, prepareState } = require(${JSON.stringify(join(repoRoot, 'dist', 'index.js'))})
      ;(async () => {
        const g = await generateBlock('hot-receiver', 16)
        const block = await prepareBlock(g.block, { chain: g.chain })
        const state = await prepareState(g.prestate)
        const run = async (i) => {
          const r = await executeBlock({ block, state, mode: i % 2 ? 'parallel' : 'sequential', threads: 2 })
          // Decode the lazy parts too (receipts, diff, header checks) on some of them.
          if (i % 10 === 0 && (r.receipts.length !== 16 || !r.verification.gasUsed || Object.keys(r.stateDiff).length < 17)) throw new Error('wrong result')
        }
        // RSS after a full collection (finalizers of native results run on a later tick).
        const rss = async () => { global.gc(); await new Promise((r) => setImmediate(r)); global.gc(); return process.memoryUsage().rss }
        // Warm up to a steady state: V8's heaps and the allocator's per-thread caches grow over
        // the first few thousand executions (to ~100 MiB above the start), then stay level.
        for (let i = 0; i < 5000; i++) await run(i)
        const start = await rss()
        let mid = 0
        for (let i = 0; i < 10000; i++) {
          await run(i)
          if (i === 4999) mid = await rss()
        }
        const end = await rss()
        console.log(JSON.stringify({ start, mid, end }))
      })().catch((e) => { console.error(e); process.exit(1) })
    `
    const out = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 120_000 })
    expect(out.status, out.stderr).toBe(0)
    const { start, mid, end } = JSON.parse(out.stdout.trim().split('\n').pop()!) as { start: number; mid: number; end: number }
    const mb = (n: number) => (n / 2 ** 20).toFixed(1)
    console.log(`RSS over 10,000 executions: ${mb(start)} MiB, ${mb(mid)} MiB after 5,000, ${mb(end)} MiB at the end`)
    // At steady state RSS moves by up to ~30 MiB either way (collections, allocator caches);
    // a leak of 8 KiB per execution (a fraction of one result) would add 80 MiB.
    expect(end - start).toBeLessThan(48 * 2 ** 20)
    expect(end - mid).toBeLessThan(48 * 2 ** 20)
  }, 180_000)

  it.skipIf(process.platform !== 'linux')(
    'OS threads stay bounded by the largest thread count asked for',
    () => {
      // Regression: the engine kept one pool per thread count, so calls with 2..32 threads left
      // 496 idle OS threads behind.
      const script = `
      const { executeBlock, generateBlock, prepareBlock, prepareState } = require(${JSON.stringify(join(repoRoot, 'dist', 'index.js'))})
      const threads = () => Number(/Threads:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1])
      ;(async () => {
        const g = await generateBlock('hot-receiver', 16)
        const block = await prepareBlock(g.block, { chain: g.chain })
        const state = await prepareState(g.prestate)
        for (let i = 0; i < 8; i++) await executeBlock({ block, state, mode: 'parallel', threads: 2 })
        const before = threads()
        for (let t = 2; t <= 32; t++) await executeBlock({ block, state, mode: 'parallel', threads: t })
        for (let t = 32; t >= 2; t--) await executeBlock({ block, state, mode: 'parallel', threads: t })
        // A replaced pool's threads exit on their own, shortly after its last run.
        const deadline = Date.now() + 5000
        while (threads() - before > 35 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
        console.log(JSON.stringify({ before, after: threads() }))
      })().catch((e) => { console.error(e); process.exit(1) })
    `
      const out = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 })
      expect(out.status, out.stderr).toBe(0)
      const { before, after } = JSON.parse(out.stdout.trim().split('\n').pop()!) as { before: number; after: number }
      console.log(`OS threads: ${before} -> ${after} after runs with 2..32 threads`)
      // The pool grows to 32 threads (powers of two); the smaller pools it replaced are gone.
      expect(after - before).toBeLessThanOrEqual(32 + 3)
    },
    90_000,
  )

  it('worker threads load and use the addon one after another, terminated mid-execution or not', () => {
    // Regression: with only workers loading the addon, the second worker to load it (after the
    // first was terminated) crashed the process with SIGSEGV: mimalloc v3 took the first
    // loading thread for its main thread and tore its state down when that thread exited.
    const index = JSON.stringify(join(repoRoot, 'dist', 'index.js'))
    const script = `
      const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads')
      if (isMainThread) {
        ;(async () => {
          for (let i = 0; i < 3; i++) {
            const w = new Worker(__filename, { workerData: { stopAfter: i === 2 ? 2 : Infinity } })
            const first = await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject) })
            if (first !== '0x100590') throw new Error('worker ' + i + ' gas ' + first)
            // Terminated while its next executions run (the last worker stops by itself).
            if (i < 2) await w.terminate(); else await new Promise((r) => w.once('exit', r))
          }
          const { executeBlock, generateBlock } = require(${index})
          const g = await generateBlock('hot-receiver', 50)
          const r = await executeBlock({ block: g.block, state: g.prestate, chain: g.chain, threads: 2 })
          console.log(JSON.stringify({ gasUsed: String(r.gasUsed) }))
        })().catch((e) => { console.error(e); process.exit(1) })
      } else {
        const { executeBlock, generateBlock } = require(${index})
        ;(async () => {
          const g = await generateBlock('hot-receiver', 50)
          for (let n = 0; n < workerData.stopAfter; n++) {
            const r = await executeBlock({ block: g.block, state: g.prestate, chain: g.chain, threads: 2 })
            if (n === 0) parentPort.postMessage('0x' + r.gasUsed.toString(16))
          }
        })()
      }
    `
    const file = join(mkdtempSync(join(tmpdir(), 'parallel-evm-workers-')), 'workers.cjs')
    writeFileSync(file, script)
    const out = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 })
    expect(out.signal, out.stderr).toBeNull()
    expect(out.status, out.stderr).toBe(0)
    expect(JSON.parse(out.stdout.trim().split('\n').pop()!)).toEqual({ gasUsed: String(50 * 21_000) })
  }, 90_000)

  it('concurrent executeBlock calls give the same results as serial calls', async () => {
    const blocks = await Promise.all(
      (['independent', 'hot-receiver', 'chain'] as const).map(async (w) => {
        const g = await generateBlock(w, 200)
        return { block: await prepareBlock(g.block, { chain: g.chain }), state: await prepareState(g.prestate) }
      }),
    )
    const jobs = blocks.flatMap((b) => (['sequential', 'parallel', 'auto'] as ExecutionMode[]).flatMap((mode) => [1, 2, 4].map((threads) => ({ ...b, mode, threads }))))
    const outcome = async (j: (typeof jobs)[number]) => {
      const o = await executeNative(j)
      return `${JSON.parse(o.summary).gasUsed} ${o.receiptsJson()} ${o.stateDiffJson()}`
    }
    const serial: string[] = []
    for (const j of jobs) serial.push(await outcome(j))
    // Every job at once, three times over, from concurrent async tasks.
    const concurrent = await Promise.all([...jobs, ...jobs, ...jobs].map(outcome))
    concurrent.forEach((c, i) => {
      expect(c === serial[i % jobs.length], `job ${i % jobs.length}`).toBe(true)
    })
    // And the three modes agree with each other for every block.
    for (let b = 0; b < blocks.length; b++) {
      const mine = serial.slice(b * 9, b * 9 + 9)
      expect(new Set(mine).size).toBe(1)
    }
  }, 120_000)
})
