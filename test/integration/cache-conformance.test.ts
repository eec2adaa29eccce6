/**
 * The public HTTP cache test suite (http-cache-tests 0.4.5, pinned as a
 * devDependency) against usher's `cache` filter, through
 * scripts/cache-conformance.ts: its origin, usher in front of it, and its
 * client, all real processes on loopback. The score is a floor: a change that
 * breaks a conformance test fails here.
 *
 * Why 147 and not the issue's 150 (docs/cache.md, "Conformance"): nine of the
 * 18 failures are 0.4.5's `age-parse` tests, which expect an invalid `Age` to
 * make a response stale; RFC 9111 §5.1 says to ignore it, and the suite's
 * current version (cache-tests.fyi) expects that, which usher follows (158/160
 * there).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REQUIRED_FLOOR = 147;

interface Score {
  readonly required: { readonly passed: number; readonly total: number };
  readonly failures: readonly { readonly id: string; readonly message: string }[];
}

test(`http-cache-tests 0.4.5: usher passes at least ${REQUIRED_FLOOR} of the 165 required tests`, { timeout: 300_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'usher-conformance-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'score.json');
  await run(process.execPath, ['scripts/cache-conformance.ts', '--target', 'usher', '--json', out, '--timeout', '240'], { maxBuffer: 16 * 1024 * 1024 });
  const score = JSON.parse(readFileSync(out, 'utf8')) as Score;
  assert.equal(score.required.total, 165);
  const failed = score.failures.map((f) => `${f.id}: ${f.message}`).join('\n');
  assert.ok(score.required.passed >= REQUIRED_FLOOR, `${score.required.passed}/165 required tests passed; failures:\n${failed}`);
  // The failures that remain are the documented ones (docs/cache.md); a new one names itself here.
  const expected = /^(age-parse-|stale-close-|headers-store-Set-Cookie|headers-store-Transfer-Encoding|304-etag-update-response-(Content-MD5|ETag|Set-Cookie))/;
  const unexpected = score.failures.filter((f) => !expected.test(f.id));
  assert.deepEqual(unexpected, [], 'only the documented failures remain');
});
