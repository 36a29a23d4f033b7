/** The final table, as aligned text for the terminal and as Markdown for the report. */
import type { Row } from '../scenarios/types';

const HEAD = ['scenario', 'measure', 'value', 'reference', 'ratio', 'goal', 'verdict', 'note'];

function cells(r: Row): string[] {
  return [
    r.scenario,
    r.measure,
    r.value,
    r.reference ?? '',
    r.ratio ?? '',
    r.goal ?? '',
    r.met === undefined ? '' : r.met ? 'met' : 'MISSED',
    r.note ?? '',
  ];
}

export function textTable(rows: Row[]): string {
  const body = rows.map(cells);
  const used = HEAD.map((_, i) => i < 3 || body.some((c) => c[i] !== ''));
  const all = [HEAD, ...body].map((r) => r.filter((_, i) => used[i]));
  const widths = all[0]!.map((_, i) => Math.max(...all.map((r) => [...r[i]!].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c + ' '.repeat(widths[i]! - [...c].length))
      .join('  ')
      .trimEnd();
  return [line(all[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...all.slice(1).map(line)].join('\n');
}

export function markdownTable(rows: Row[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const out = [`| ${HEAD.join(' | ')} |`, `| ${HEAD.map(() => '---').join(' | ')} |`];
  for (const r of rows) {
    const c = cells(r);
    c[6] = r.met === undefined ? '' : r.met ? '✅ met' : '❌ **missed**';
    out.push(`| ${c.map(esc).join(' | ')} |`);
  }
  return out.join('\n');
}
