/** Number formatting for the dashboard. No DOM: unit-tested under Node. */

/** `0`, `0.4`, `12`, `1.2k` requests per second. */
export function formatRate(perSecond: number): string {
  if (perSecond >= 10_000) return `${(perSecond / 1000).toFixed(0)}k`;
  if (perSecond >= 1000) return `${(perSecond / 1000).toFixed(1)}k`;
  if (perSecond >= 10 || Number.isInteger(perSecond)) return perSecond.toFixed(0);
  return perSecond.toFixed(1);
}

/** CPU time as a share of one core: `0%`, `<0.1%`, `0.4%`, `37%`, `100%`. */
export function formatPercent(percent: number): string {
  if (percent <= 0) return '0%';
  if (percent < 0.1) return '<0.1%';
  if (percent < 10) return `${percent.toFixed(1)}%`;
  return `${percent.toFixed(0)}%`;
}

/** `–` without data, `0.35 ms`, `12 ms`, `1.50 s`. */
export function formatMs(ms: number | null): string {
  if (ms === null) return '–';
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 10) return `${ms.toFixed(0)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** Errors as a share of requests: `–` without requests, `0%`, `0.5%`, `12%`. */
export function formatErrorRate(errors: number, requests: number): string {
  if (requests === 0) return '–';
  const percent = (100 * errors) / requests;
  if (percent === 0) return '0%';
  if (percent < 10) return `${percent.toFixed(1)}%`;
  return `${percent.toFixed(0)}%`;
}

/** A weight, with the effective one while slow start ramps it: `1`, `0.4 of 1`. */
export function formatWeight(effective: number, configured: number): string {
  return effective === configured ? String(configured) : `${Number(effective.toFixed(2))} of ${configured}`;
}

/** `HH:MM:SS` local time of an ISO timestamp. */
export function formatClock(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** SVG polyline points for `values` in a `width` x `height` box; the top is the largest value (at least 1). */
export function sparklinePoints(values: readonly number[], width: number, height: number): string {
  if (values.length === 0) return '';
  const max = Math.max(1, ...values);
  const step = values.length === 1 ? 0 : width / (values.length - 1);
  return values.map((v, i) => `${round(i * step)},${round(height - (v / max) * height)}`).join(' ');
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

/** Bytes as `0 B`, `512 B`, `1.5 KiB`, `12 MiB`, `1.2 GiB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 10 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}
