/**
 * Durations in config: a number and a unit, `500ms`, `2s`, `1m`, `1h`, `1d`,
 * optionally combined largest unit first (`1m30s`). A bare number is rejected
 * (`30` could mean 30 s as in nginx or 30 ms as in HAProxy); only `0` may omit
 * the unit. Fractions are allowed when the result is a whole number of
 * milliseconds (`1.5s`).
 */
import { failed, parsed, type Parsed } from './parsed.ts';

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
type Unit = keyof typeof UNIT_MS;
const UNIT_ORDER: readonly Unit[] = ['d', 'h', 'm', 's', 'ms'];

const SEGMENT = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;

/** The longest duration a Node.js timer can hold: 2^31 - 1 ms, about 24.8 days. */
export const MAX_DURATION_MS = 2_147_483_647;

/** Regex source (unanchored) for an input duration, for JSON Schema. */
export const DURATION_PATTERN = '0|(\\d+(\\.\\d+)?(d|h|m|s|ms))+';

/** What a duration looks like, for error messages. */
export const DURATION_EXPECTED = 'expected a duration such as "500ms", "5s", "1m", "1h" or "1d"';

/**
 * Parse a duration string into milliseconds.
 *
 * @example parseDuration('1m30s') // { ok: true, value: 90000 }
 * @example parseDuration('30')    // { ok: false, message: 'expected a duration ... (the unit is required)' }
 */
export function parseDuration(text: string): Parsed<number> {
  if (text === '0') return parsed(0);
  if (/^\d+(\.\d+)?$/.test(text)) return failed(`${DURATION_EXPECTED} (the unit is required)`);
  SEGMENT.lastIndex = 0;
  let total = 0;
  let previous = -1;
  let match: RegExpExecArray | null;
  while ((match = SEGMENT.exec(text)) !== null) {
    const unit = match[2] as Unit;
    const rank = UNIT_ORDER.indexOf(unit);
    if (rank <= previous) return failed(`${DURATION_EXPECTED} (combine units largest first, each once, e.g. "1m30s")`);
    previous = rank;
    total += Number(match[1]) * UNIT_MS[unit];
    if (SEGMENT.lastIndex === text.length) break;
  }
  if (match === null || SEGMENT.lastIndex !== text.length) return failed(DURATION_EXPECTED);
  if (!Number.isInteger(total)) return failed('durations have millisecond precision; the value is not a whole number of milliseconds');
  if (total > MAX_DURATION_MS) return failed(`duration must be at most ${MAX_DURATION_MS}ms (about 24.8 days)`);
  return parsed(total);
}

/** Format milliseconds as the shortest exact duration string (`90000` → `1m30s`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0';
  let rest = ms;
  let out = '';
  for (const unit of UNIT_ORDER) {
    const size = UNIT_MS[unit];
    const count = Math.floor(rest / size);
    if (count > 0) {
      out += `${count}${unit}`;
      rest -= count * size;
    }
  }
  return out;
}
