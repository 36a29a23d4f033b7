/** Plain SVG charts, written as text (no dependencies): latency percentile curves and log-scale bars. */

export interface Series {
  label: string;
  /** [percentile 0..100, ms] */
  points: [number, number][];
  dashed?: boolean;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const FONT = 'font-family="Helvetica, Arial, sans-serif"';

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** x position of a percentile: log10(1 / (1 - p)), the tail spread out; 100 drawn as "max". */
function percentileX(p: number): number {
  const q = Math.min(p, 99.995) / 100;
  return Math.log10(1 / (1 - q));
}

function niceMs(v: number): string {
  if (v >= 1000) return `${v / 1000} s`;
  return `${v} ms`;
}

/** Latency distributions: x = percentile (log of the tail), y = latency (log), one line per series. */
export function percentileChart(
  title: string,
  series: Series[],
  opts: { width?: number; height?: number } = {},
): string {
  const width = opts.width ?? 760;
  const height = opts.height ?? 420;
  const m = { left: 70, right: 20, top: 40, bottom: 60 + 18 * Math.ceil(series.length / 2) };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const all = series.flatMap((s) => s.points.map(([, v]) => v)).filter((v) => Number.isFinite(v) && v > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...all, 1))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...all, 1) * 1.0001)));
  const xMax = percentileX(100);
  const x = (p: number) => m.left + (percentileX(p) / xMax) * plotW;
  const y = (v: number) =>
    m.top + plotH - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotH;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
  );
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  out.push(
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold" ${FONT}>${esc(title)}</text>`,
  );
  // grid: decades on y (with 2 and 5 minor lines), percentiles on x
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    for (const k of [1, 2, 5]) {
      const v = d * k;
      if (v > hi * 1.0001) break;
      const yy = y(v).toFixed(1);
      out.push(
        `<line x1="${m.left}" x2="${m.left + plotW}" y1="${yy}" y2="${yy}" stroke="${k === 1 ? '#ccc' : '#eee'}"/>`,
      );
      if (k === 1 || hi / lo <= 100)
        out.push(
          `<text x="${m.left - 6}" y="${yy}" dy="4" text-anchor="end" font-size="11" ${FONT}>${niceMs(Number(v.toPrecision(3)))}</text>`,
        );
    }
  }
  for (const [p, label] of [
    [0, '0%'],
    [50, '50%'],
    [90, '90%'],
    [99, '99%'],
    [99.9, '99.9%'],
    [99.99, '99.99%'],
    [100, 'max'],
  ] as const) {
    const xx = x(p).toFixed(1);
    out.push(`<line x1="${xx}" x2="${xx}" y1="${m.top}" y2="${m.top + plotH}" stroke="#ddd"/>`);
    out.push(`<text x="${xx}" y="${m.top + plotH + 16}" text-anchor="middle" font-size="11" ${FONT}>${label}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  out.push(
    `<text x="${m.left + plotW / 2}" y="${m.top + plotH + 34}" text-anchor="middle" font-size="12" ${FONT}>percentile</text>`,
  );
  out.push(
    `<text transform="translate(16 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="12" ${FONT}>latency (log scale)</text>`,
  );
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const pts = s.points.filter(([, v]) => Number.isFinite(v)).map(([p, v]) => `${x(p).toFixed(1)},${y(v).toFixed(1)}`);
    out.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''} points="${pts.join(' ')}"/>`,
    );
    for (const pt of pts) {
      const [px, py] = pt.split(',');
      out.push(`<circle cx="${px}" cy="${py}" r="2.5" fill="${color}"/>`);
    }
    const lx = m.left + (i % 2) * (plotW / 2);
    const ly = m.top + plotH + 52 + 18 * Math.floor(i / 2);
    out.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
    );
    out.push(`<text x="${lx + 30}" y="${ly + 4}" font-size="12" ${FONT}>${esc(s.label)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** Horizontal bars on a log scale (operations per second), with the value printed on each bar. */
export function barChart(title: string, bars: { label: string; value: number; note?: string }[], unit: string): string {
  const width = 760;
  const barH = 30;
  const m = { left: 300, right: 120, top: 44, bottom: 40 };
  const height = m.top + m.bottom + bars.length * (barH + 12);
  const plotW = width - m.left - m.right;
  const values = bars.map((b) => b.value).filter((v) => v > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...values)) - 0.0001));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...values))));
  const x = (v: number) => ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotW;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
  );
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  out.push(
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold" ${FONT}>${esc(title)}</text>`,
  );
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    const xx = (m.left + x(d)).toFixed(1);
    out.push(`<line x1="${xx}" x2="${xx}" y1="${m.top - 4}" y2="${height - m.bottom}" stroke="#ddd"/>`);
    out.push(
      `<text x="${xx}" y="${height - m.bottom + 16}" text-anchor="middle" font-size="11" ${FONT}>${d.toLocaleString('en-US')}</text>`,
    );
  }
  out.push(
    `<text x="${m.left + plotW / 2}" y="${height - 8}" text-anchor="middle" font-size="12" ${FONT}>${esc(unit)} (log scale)</text>`,
  );
  bars.forEach((b, i) => {
    const yy = m.top + i * (barH + 12);
    const w = Math.max(1, x(b.value));
    out.push(
      `<text x="${m.left - 8}" y="${yy + barH / 2 + 4}" text-anchor="end" font-size="12" ${FONT}>${esc(b.label)}</text>`,
    );
    out.push(
      `<rect x="${m.left}" y="${yy}" width="${w.toFixed(1)}" height="${barH}" fill="${COLORS[i % COLORS.length]}"/>`,
    );
    out.push(
      `<text x="${m.left + w + 6}" y="${yy + barH / 2 + 4}" font-size="12" ${FONT}>${esc(`${Math.round(b.value).toLocaleString('en-US')}${b.note ? `  ${b.note}` : ''}`)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
