/**
 * One usher instance for bench/ratelimit.ts: `node bench/lib/ratelimit-usher.ts <config.yaml> <live instances>`.
 * Starts usher embedded (main thread serves, access log off), sets the
 * rate-limit store's live-instance count (what the instance registry will
 * provide; the bench knows how many instances it started), prints one JSON
 * line `{"port":…,"admin":"http://…"}` and stops on SIGTERM.
 */
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../src/config/index.ts';
import { createAccessLog } from '../../src/observe/access-log.ts';
import { Usher } from '../../src/runtime/usher.ts';

const [file, live = '1'] = process.argv.slice(2);
if (file === undefined) throw new Error('usage: ratelimit-usher.ts <config.yaml> [live instances]');
const result = parseConfig(readFileSync(file, 'utf8'), file, process.env);
if (!result.ok) {
  process.stderr.write(`${result.errors.map((e) => `${e.path}: ${e.message}`).join('\n')}\n`);
  process.exit(2);
}
const usher = await Usher.start(result.config, { accessLog: createAccessLog({ enabled: false }) });
const instances = Number(live);
usher.rateLimits.setLiveInstances(() => instances);
process.stdout.write(`${JSON.stringify({ port: usher.address('web').port, admin: usher.adminUrl })}\n`);
process.on('SIGTERM', () => {
  void usher.stop({ timeoutMs: 500 }).finally(() => process.exit(0));
});
