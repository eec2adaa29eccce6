/**
 * A dnsmasq of a test's own (Debian's package, 2.90): on 127.0.0.1 and a free
 * port, reading no system file (no /etc/dnsmasq.conf, /etc/hosts or
 * /etc/resolv.conf), forwarding nothing, and authoritative for `.test`
 * (`--local=/test/`: unknown names are NXDOMAIN, known names without the
 * asked type NODATA, instead of REFUSED). Records come from an addn-hosts
 * file (A/AAAA, re-read on SIGHUP: `setHosts`) and from `--host-record` and
 * `--srv-host` options (read at start only: `restart` with new ones, same
 * port). Stopped by its pid when the test ends, never by name; the package's
 * system service is never used.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { promises as dns } from 'node:dns';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { freePort } from './ports.ts';
import { waitFor } from './wait.ts';

const CANDIDATES = ['/usr/sbin/dnsmasq', '/usr/bin/dnsmasq'];

/** The dnsmasq binary, if installed (.ci/run installs it). */
export const DNSMASQ = CANDIDATES.find((path) => existsSync(path));

export interface Dnsmasq {
  readonly port: number;
  /** `127.0.0.1:port`, for `resolvers`. */
  readonly address: string;
  /** Rewrites the addn-hosts file (`ip name` lines) and sends SIGHUP; resolves once dnsmasq answers with it. */
  setHosts(lines: readonly string[], check?: { name: string; addresses: readonly string[] }): Promise<void>;
  /** Restarts with other options (`--srv-host=…`, `--host-record=…`) on the same port. */
  restart(options: readonly string[]): Promise<void>;
}

export async function startDnsmasq(t: TestContext, options: readonly string[], hosts: readonly string[] = []): Promise<Dnsmasq> {
  if (DNSMASQ === undefined) throw new Error('dnsmasq is not installed (apt-get install dnsmasq; .ci/run does)');
  const dir = mkdtempSync(join(tmpdir(), 'usher-dnsmasq-'));
  const hostsFile = join(dir, 'hosts');
  writeFileSync(hostsFile, hosts.map((line) => `${line}\n`).join(''));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let port = 0;
  let log = '';
  const launch = async (extra: readonly string[]): Promise<boolean> => {
    const args = [
      '--no-daemon', '--conf-file=/dev/null', `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces',
      '--no-resolv', '--no-hosts', '--local=/test/', `--addn-hosts=${hostsFile}`, `--pid-file=${join(dir, 'pid')}`,
      '--user=root', '--group=root', '--log-facility=-', '--local-ttl=1', ...extra,
    ];
    const started = spawn(DNSMASQ, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    let gone = false;
    exited = new Promise<void>((resolve) => started.once('exit', () => ((gone = true), resolve())));
    started.stdout!.on('data', (chunk: Buffer) => (log += chunk.toString()));
    started.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()));
    const resolver = new dns.Resolver({ timeout: 100, tries: 1 });
    resolver.setServers([`127.0.0.1:${port}`]);
    // Any answer (NXDOMAIN for a name it does not know) means it serves.
    await waitFor(async () => gone || (await resolver.resolve4('ready.test').then(() => true, (err: NodeJS.ErrnoException) => err.code === 'ENOTFOUND')), `dnsmasq on port ${port}`, 10_000, 20);
    return !gone;
  };
  const stop = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (running?.pid !== undefined && running.exitCode === null) process.kill(running.pid, 'SIGTERM');
    await exited;
  };
  let current = options;
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    if (await launch(current)) break;
    if (attempt === 5) throw new Error(`dnsmasq did not start:\n${log}`);
  }
  t.after(async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    port,
    address: `127.0.0.1:${port}`,
    async setHosts(lines, check) {
      writeFileSync(hostsFile, lines.map((line) => `${line}\n`).join(''));
      process.kill(child!.pid!, 'SIGHUP');
      if (check === undefined) return;
      const resolver = new dns.Resolver({ timeout: 100, tries: 1 });
      resolver.setServers([`127.0.0.1:${port}`]);
      const want = [...check.addresses].sort().join();
      await waitFor(async () => (await resolver.resolve4(check.name).then((r) => r.sort().join(), () => '')) === want, `dnsmasq to re-read its hosts file`, 5000, 20);
    },
    async restart(extra) {
      await stop();
      current = extra;
      if (!(await launch(current))) throw new Error(`dnsmasq did not restart on port ${port}:\n${log}`);
    },
  };
}
