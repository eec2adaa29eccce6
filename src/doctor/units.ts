/**
 * How the doctor writes times: config values exactly as the config takes them
 * (`2s`, `300ms`), measured ones rounded (`310ms`, `1.5s`, `61s`), so a fix
 * can be pasted into the config as written.
 */
import { formatDuration } from '../config/duration.ts';

/** A measured time: whole ms below 1 s, one decimal below 10 s, whole seconds above. */
export function measured(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 10_000) return `${(Math.round(ms / 100) / 10).toFixed(1)}s`;
  return `${Math.round(ms / 1000)}s`;
}

/** A config duration, as the config file writes it (`60s`, `1m30s`, `250ms`). */
export function configured(ms: number): string {
  return formatDuration(ms);
}

/**
 * A duration safely below `ms` for `timeouts.idle`: three quarters of it,
 * rounded down to 100 ms (to whole seconds from 10 s), at least 100 ms;
 * written `2900ms` rather than `2s900ms`.
 */
export function idleBelow(ms: number): string {
  const below = ms * 0.75;
  const value = below >= 10_000 ? Math.floor(below / 1000) * 1000 : Math.max(100, Math.floor(below / 100) * 100);
  return value % 1000 === 0 ? formatDuration(value) : `${value}ms`;
}

/** `65000` → `65_000`, as a TypeScript literal for `server.keepAliveTimeout`. */
export function numericLiteral(n: number): string {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, '_');
}

/** `1 backend`, `2 backends`. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
