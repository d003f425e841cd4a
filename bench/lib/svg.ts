// Hand-written SVG charts: horizontal bars, one group per row, one bar per series, on a log or
// linear axis. Enough for ratios and MIPS; no charting dependency.

export interface BarChart {
  title: string;
  /** Axis caption, e.g. "guest MIPS" or "cycles per operation (log)". */
  unit: string;
  series: string[];
  rows: { label: string; values: (number | null)[] }[];
  log?: boolean;
}

const COLOURS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1'];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function fmt(v: number): string {
  if (v >= 1e4) return `${Math.round(v / 1e3)}k`;
  if (v >= 100) return v.toFixed(0);
  if (v >= 1) return v.toFixed(1);
  return v.toPrecision(2);
}

export function barChartSvg(c: BarChart): string {
  const labelW = 170, plotW = 460, barH = 12, gap = 10, top = 40, legendH = 18 * Math.ceil(c.series.length / 3);
  const values = c.rows.flatMap((r) => r.values).filter((v): v is number => v !== null && v > 0 && Number.isFinite(v));
  const max = Math.max(1e-9, ...values);
  const min = Math.min(max, ...values);
  const log = c.log ?? false;
  const lo = log ? Math.floor(Math.log10(min)) : 0;
  const hi = log ? Math.max(lo + 1, Math.ceil(Math.log10(max))) : max;
  const x = (v: number): number => (log ? ((Math.log10(v) - lo) / (hi - lo)) * plotW : (v / hi) * plotW);
  const groupH = c.series.length * barH + gap;
  const height = top + c.rows.length * groupH + legendH + 30;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${labelW + plotW + 60}" height="${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<text x="8" y="18" font-size="14" font-weight="bold">${esc(c.title)}</text>`);
  out.push(`<text x="${labelW}" y="34" fill="#555">${esc(c.unit)}${log ? ' (log scale)' : ''}</text>`);
  c.rows.forEach((r, i) => {
    const y0 = top + i * groupH;
    out.push(`<text x="${labelW - 6}" y="${y0 + (c.series.length * barH) / 2 + 4}" text-anchor="end">${esc(r.label)}</text>`);
    r.values.forEach((v, j) => {
      const y = y0 + j * barH;
      if (v === null || !(v > 0) || !Number.isFinite(v)) {
        out.push(`<text x="${labelW + 2}" y="${y + barH - 2}" fill="#999">n/a</text>`);
        return;
      }
      const w = Math.max(1, x(v));
      out.push(`<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${COLOURS[j % COLOURS.length]}"><title>${esc(`${c.series[j]}: ${Number(v.toPrecision(6))}`)}</title></rect>`);
      out.push(`<text x="${(labelW + w + 3).toFixed(1)}" y="${y + barH - 3}" fill="#333">${fmt(v)}</text>`);
    });
  });
  const ly = top + c.rows.length * groupH + 8;
  c.series.forEach((s, j) => {
    const lx = labelW + (j % 3) * 160;
    const y = ly + Math.floor(j / 3) * 18;
    out.push(`<rect x="${lx}" y="${y}" width="10" height="10" fill="${COLOURS[j % COLOURS.length]}"/><text x="${lx + 14}" y="${y + 9}">${esc(s)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
