// `npm run bench:report`: the latest raw results under bench/results/ (one file per suite) become
// the README's headline table and the tables and charts of docs/performance.md (between
// `<!-- bench:NAME -->` markers; docs/figures/*.svg). Needs `npm run build:ts`.
//   node bench/report.cjs [--results dir]
const { join } = require('node:path')
const { parseArgs } = require('node:util')
const { updateDocs } = require('../dist/bench/figures.js')

const { values } = parseArgs({ options: { results: { type: 'string' } } })
const root = join(__dirname, '..')
for (const path of updateDocs({ root, resultsDir: values.results })) console.log(`wrote ${path}`)
