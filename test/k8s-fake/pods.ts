/**
 * "Pods" for discovery tests: real HTTP servers on loopback, each on its own
 * address (127.0.0.x) and all on one port, as a Service's pods share a
 * targetPort, so one EndpointSlice can list them. The port is free when
 * picked (bound at 0 on the first address); if another address cannot take
 * it, the whole set is tried again on a new one.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Pod {
  readonly name: string;
  readonly ip: string;
  readonly port: number;
  /** Requests it received. */
  requests: number;
  /** Requests it is answering now. */
  inFlight: number;
  /** A graceful exit: stops accepting, closes idle connections, lets the requests in flight finish. */
  stop(): Promise<void>;
  /** Closes at once, cutting connections (test cleanup). */
  close(): Promise<void>;
}

export type PodHandler = (req: IncomingMessage, res: ServerResponse, pod: Pod) => void;

/** Answers with its name, after reading the body. */
export const answerWithPodName: PodHandler = (req, res, pod) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain', 'x-origin': pod.name }).end(pod.name));
};

/** A pod that answers after `ms` (requests stay in flight meanwhile). */
export const slowPod = (ms: number): PodHandler => (req, res, pod) => {
  req.resume();
  setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain', 'x-origin': pod.name }).end(pod.name), ms).unref();
};

let nextOctet = 10;

/** Starts `count` pods named `${prefix}0…` on 127.0.0.N with one shared port. */
export async function startPods(count: number, prefix = 'pod', handler: PodHandler = answerWithPodName): Promise<Pod[]> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const octets = Array.from({ length: count }, () => {
      const octet = nextOctet;
      nextOctet = nextOctet >= 250 ? 10 : nextOctet + 1;
      return octet;
    });
    const pods: Pod[] = [];
    let port = 0;
    try {
      for (let i = 0; i < count; i++) {
        const pod = await startPod(`${prefix}${i}`, `127.0.0.${octets[i]}`, port, handler);
        port = pod.port;
        pods.push(pod);
      }
      return pods;
    } catch (error) {
      for (const pod of pods) await pod.close();
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    }
  }
  throw new Error('no port free on every pod address after 10 tries');
}

/** One more pod on the same port as `like` (a scale-up), on a new address. */
export async function addPod(name: string, like: Pod, handler: PodHandler = answerWithPodName): Promise<Pod> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const octet = nextOctet;
    nextOctet = nextOctet >= 250 ? 10 : nextOctet + 1;
    try {
      return await startPod(name, `127.0.0.${octet}`, like.port, handler);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    }
  }
  throw new Error(`no address free on port ${like.port}`);
}

async function startPod(name: string, ip: string, port: number, handler: PodHandler): Promise<Pod> {
  const server: Server = createServer();
  const sockets = new Set<Socket>();
  const pod: Pod = {
    name,
    ip,
    port,
    requests: 0,
    inFlight: 0,
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await closed;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    pod.requests++;
    pod.inFlight++;
    res.on('close', () => pod.inFlight--);
    handler(req, res, pod);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.unref();
  (pod as { port: number }).port = (server.address() as AddressInfo).port;
  return pod;
}
