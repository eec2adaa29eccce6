/**
 * redis-server processes of a test's own, on free loopback ports, stopped by
 * their pid when the test ends (never by name): plain, with a password, with
 * TLS, as a Sentinel or as a one-node Cluster. `kill()` is a SIGKILL (a
 * crash, as in production), `restart()` starts it again on the same port
 * (empty: nothing is saved).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { createClient } from 'redis';
import { freePort } from './ports.ts';
import { waitFor } from './wait.ts';

function plainClient(port: number) {
  return createClient({ url: `redis://127.0.0.1:${port}` });
}
type Client = ReturnType<typeof plainClient>;

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** The server's pid (changes with `restart`). */
  readonly pid: number | undefined;
  /** SIGKILL; resolves once it exited. */
  kill(): Promise<void>;
  /** Starts it again on the same port (nothing kept: no persistence). */
  restart(): Promise<void>;
  /** A node-redis client of the test's own (closed when the test ends). */
  client(): Promise<Client>;
}

/** One PING on a fresh connection: true on +PONG. */
export function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data: Buffer) => done(data.toString().startsWith('+PONG')));
  });
}

/**
 * One command (inline form) on a fresh plain connection: the reply's text once
 * `complete` holds (default: a first line), or what came within a second.
 * Resolves '' when nothing came (refused, timed out).
 */
export function redisCommand(port: number, command: string, complete: (text: string) => boolean = (text) => text.includes('\r\n')): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let got = '';
    const done = (text: string): void => {
      socket.destroy();
      resolve(text);
    };
    socket.setTimeout(1000, () => done(got));
    socket.once('error', () => done(''));
    socket.once('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (data: Buffer) => {
      got += data.toString();
      if (complete(got)) done(got);
    });
  });
}

export interface RedisStartOptions {
  /** Extra redis-server arguments (`--requirepass`, TLS files...). */
  readonly args?: readonly string[];
  /** How to know it is up (default: a plain PING answered PONG or NOAUTH). */
  readonly ready?: (port: number) => Promise<boolean>;
  /** Arguments that need the port (a TLS server listens on `--tls-port`, not `--port`). */
  readonly portArgs?: (port: number) => readonly string[];
}

/** A redis-server on a free loopback port, without persistence. */
export async function startRedis(t: TestContext, options: RedisStartOptions = {}): Promise<RedisServer> {
  const port = await freePort();
  const portArgs = options.portArgs ?? ((p: number) => ['--port', String(p)]);
  const ready = options.ready ?? (async (p: number) => /^(\+PONG|-NOAUTH)/.test(await redisCommand(p, 'PING')));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const launch = async (): Promise<void> => {
    const started = spawn('redis-server', [...portArgs(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', ...(options.args ?? [])], { stdio: 'ignore' });
    child = started;
    exited = new Promise<void>((resolve) => started.once('exit', () => resolve()));
    await waitFor(() => ready(port), `redis-server on port ${port}`, 10_000, 20);
  };
  const kill = async (): Promise<void> => {
    const running = child;
    if (running === undefined) return;
    child = undefined;
    if (running.pid !== undefined && running.exitCode === null) process.kill(running.pid, 'SIGKILL');
    await exited;
  };
  const clients: Client[] = [];
  t.after(async () => {
    for (const c of clients) await c.close().catch(() => c.destroy());
    await kill();
  });
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return child?.pid;
    },
    kill,
    restart: async () => {
      await kill();
      await launch();
    },
    client: async () => {
      const c = plainClient(port).on('error', () => {});
      await c.connect();
      clients.push(c);
      return c;
    },
  };
}

/** A redis-server in Sentinel mode watching `masterPort` as `name` (quorum 1). */
export async function startSentinel(t: TestContext, name: string, masterPort: number): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'usher-sentinel-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'sentinel.conf');
  // Sentinel rewrites its config file, so it needs one of its own.
  writeFileSync(file, `sentinel monitor ${name} 127.0.0.1 ${masterPort} 1\n`);
  return startRedis(t, {
    portArgs: (port) => [file, '--sentinel', '--port', String(port)],
    ready: async (port) => (await redisCommand(port, `SENTINEL get-master-addr-by-name ${name}`, (text) => text.includes(String(masterPort)))).includes(String(masterPort)),
  });
}

/** A one-node Redis Cluster (every slot on this node), enough for the client's Cluster mode. */
export async function startClusterNode(t: TestContext): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'usher-cluster-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const server = await startRedis(t, { args: ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--dir', dir] });
  await redisCommand(server.port, 'CLUSTER ADDSLOTSRANGE 0 16383');
  await waitFor(async () => (await redisCommand(server.port, 'CLUSTER INFO', (text) => text.includes('cluster_state:'))).includes('cluster_state:ok'), 'the one-node cluster to be ok', 10_000, 50);
  return server;
}
