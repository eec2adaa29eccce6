/**
 * The tests' DNS server (test/helpers/dns-server.ts) in a worker thread, so
 * its CPU is not counted on the main thread a benchmark measures. Messages
 * in: `{ set: [name, entry] }`, answered `{ done: true }` once applied. Out,
 * first: `{ port }`.
 */
import { parentPort } from 'node:worker_threads';
import { startDnsServer, type DnsEntry } from '../../test/helpers/dns-server.ts';

const server = await startDnsServer();
parentPort!.on('message', (message: { set?: [string, DnsEntry]; count?: string }) => {
  if (message.set !== undefined) server.set(...message.set);
  parentPort!.postMessage({ done: true, queries: server.queries.length });
});
parentPort!.postMessage({ port: server.port });
