/**
 * A redis-server of a test's own, on a free loopback port, stopped by its pid
 * when the test ends (never by name). `kill()` is a SIGKILL (a crash, as in
 * production), `restart()` starts it again on the same port (empty: nothing
 * is saved).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
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
  kill(): Promise<void>;
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

export async function startRedis(t: TestContext): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const launch = async (): Promise<void> => {
    const started = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'], { stdio: 'ignore' });
    child = started;
    exited = new Promise<void>((resolve) => started.once('exit', () => resolve()));
    await waitFor(() => ping(port), `redis-server on port ${port}`, 10_000, 20);
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
