/**
 * The config's `log` section drives the CLI's process logger: a file
 * destination gets the JSON lines (its directory created) and stderr stays
 * quiet; the level filters; USHER_LOG_LEVEL overrides the file.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { spawnCli } from '../helpers/cli.ts';
import { startOrigin } from '../helpers/origin.ts';
import { freePort } from '../helpers/ports.ts';

function yaml(backend: string, log: string, port = 0): string {
  return `listeners:
  - name: web
    bind: 127.0.0.1:${port}
    routes:
      - pool: main
pools:
  main:
    backends:
      - address: ${backend}
accessLog:
  enabled: false
log: ${log}
`;
}

/** Resolves once something accepts connections on `port` (usher has started). */
async function accepting(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    assert.ok(Date.now() < deadline, `nothing listens on ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Lines of `file` once `pattern` shows up in it (the logger writes asynchronously). */
async function linesOnce(file: string, pattern: RegExp): Promise<string[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    if (pattern.test(text)) return text.trimEnd().split('\n');
    assert.ok(Date.now() < deadline, `timed out waiting for ${pattern} in ${file}: ${JSON.stringify(text)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

test('log.destination and log.level configure the process log of usher start', async (t) => {
  const origin = await startOrigin('a');
  const dir = mkdtempSync(join(tmpdir(), 'usher-log-'));
  t.after(async () => {
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  await t.test('info to a file in a directory that does not exist yet; stderr stays empty', async () => {
    const logFile = join(dir, 'logs', 'usher.log');
    const config = join(dir, 'info.yaml');
    writeFileSync(config, yaml(origin.address, `{ level: info, destination: ${logFile} }`));
    const cli = spawnCli(['start', '-c', config]);
    const lines = await linesOnce(logFile, /"msg":"listening"/);
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exited, 0);
    const parsed = lines.map((line) => JSON.parse(line) as { level: string; msg: string; listener?: string });
    assert.ok(parsed.some((entry) => entry.level === 'info' && entry.msg === 'listening' && entry.listener === 'web'));
    assert.equal(cli.stderr, '');
  });

  await t.test('warn leaves out info lines; USHER_LOG_LEVEL brings them back', async () => {
    const quietFile = join(dir, 'warn.log');
    const config = join(dir, 'warn.yaml');
    const port = await freePort();
    writeFileSync(config, yaml(origin.address, `{ level: warn, destination: ${quietFile} }`, port));
    const quiet = spawnCli(['start', '-c', config]);
    await accepting(port);
    quiet.child.kill('SIGTERM');
    assert.equal(await quiet.exited, 0);
    const text = existsSync(quietFile) ? readFileSync(quietFile, 'utf8') : '';
    assert.doesNotMatch(text, /"level":"info"/);

    const loud = spawnCli(['start', '-c', config], { USHER_LOG_LEVEL: 'debug' });
    await linesOnce(quietFile, /"msg":"listening"/);
    loud.child.kill('SIGTERM');
    assert.equal(await loud.exited, 0);
  });
});
