// Markdown tables for the generated sections of the docs.

/** A table; `align` gives each column's alignment (numbers right). */
export function mdTable(header: string[], align: ('l' | 'r')[], rows: string[][]): string {
  const sep = align.map((a) => (a === 'r' ? '---:' : '---'))
  return [header, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n')
}
