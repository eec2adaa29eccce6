import { pino } from 'pino';
import type { AccessLogConfig } from '../config/types.ts';

/** One line per request. Field names are a contract: log pipelines parse them. */
export interface AccessRecord {
  readonly client: string;
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly listener: string;
  readonly route: string | undefined;
  readonly pool: string | undefined;
  readonly backend: string | undefined;
  /** Time from sending upstream to the response head arriving; -1 when there was no upstream response. */
  readonly upstreamMs: number;
  readonly totalMs: number;
  /** Request head and body bytes read from the client. */
  readonly bytesIn: number;
  /** Response body bytes sent to the client, as on the wire (chunk framing included). */
  readonly bytesOut: number;
  /** Error code when usher answered or cut the response itself. */
  readonly error: string | undefined;
}

export interface AccessLog {
  readonly enabled: boolean;
  write(record: AccessRecord): void;
  flush(): void;
}

/** The access log that writes nothing. */
export const disabledAccessLog: AccessLog = { enabled: false, write() {}, flush() {} };

/**
 * The access log as configured: JSON lines to stdout or a file, or nothing.
 * Lines go through pino's buffered asynchronous destination (sonic-boom), so a
 * slow disk never blocks the event loop; the record is plain data, so
 * JSON.stringify is the whole serialiser.
 */
export function createAccessLog(config: AccessLogConfig): AccessLog {
  if (!config.enabled) return disabledAccessLog;
  const dest = config.path === undefined || config.path === '-' ? 1 : config.path;
  const stream = pino.destination({ dest, sync: false, mkdir: true });
  return {
    enabled: true,
    write(record) {
      stream.write(`{"time":"${new Date().toISOString()}",${JSON.stringify(record).slice(1)}\n`);
    },
    flush() {
      try {
        stream.flushSync();
      } catch {
        // Not open yet or already closed: nothing buffered to lose.
      }
    },
  };
}
