/**
 * A small authoritative DNS server for tests, over UDP on 127.0.0.1 and an
 * ephemeral port: A, AAAA and SRV answers from a mutable table, with a TTL per
 * name, any response code (NXDOMAIN, SERVFAIL, REFUSED) and silence (the query
 * is dropped, so the client times out) on demand. It counts and logs every
 * query. Names in answers are written in full (no compression pointers), which
 * every resolver reads. A name not in the table is NXDOMAIN; a name in it
 * without records of the asked type is NODATA (NOERROR, no answer).
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { isIPv4, isIPv6 } from 'node:net';

export type DnsType = 'A' | 'AAAA' | 'SRV';
export type Rcode = 'NOERROR' | 'SERVFAIL' | 'NXDOMAIN' | 'REFUSED';

const TYPE_CODES: Readonly<Record<DnsType, number>> = { A: 1, AAAA: 28, SRV: 33 };
const RCODES: Readonly<Record<Rcode, number>> = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 };

export interface SrvRecord {
  readonly priority: number;
  readonly weight: number;
  readonly port: number;
  readonly target: string;
}

/** What the server knows of one name. */
export interface DnsEntry {
  readonly a?: readonly string[];
  readonly aaaa?: readonly string[];
  readonly srv?: readonly SrvRecord[];
  /** TTL of every record of the name, in seconds. Default 60. */
  readonly ttl?: number;
  /** Answer with this code instead (no records). */
  readonly rcode?: Rcode;
  /** Drop queries for this name: the client sees a timeout. */
  readonly silent?: boolean;
}

/** One query the server received. */
export interface SeenQuery {
  readonly name: string;
  readonly type: string;
  /** performance.now() when it arrived. */
  readonly at: number;
}

export interface DnsServer {
  readonly port: number;
  /** `127.0.0.1:port`, as `resolvers` takes it. */
  readonly address: string;
  /** Sets (replaces) what the server answers for `name`. */
  set(name: string, entry: DnsEntry): void;
  /** Forgets `name`: NXDOMAIN from now on. */
  delete(name: string): void;
  /** Drops every query, whatever the name, while on. */
  silenceAll(on: boolean): void;
  readonly queries: SeenQuery[];
  /** Queries for `name` (of `type`, when given) so far. */
  count(name: string, type?: DnsType): number;
  close(): Promise<void>;
}

export async function startDnsServer(): Promise<DnsServer> {
  const socket: Socket = createSocket('udp4');
  const table = new Map<string, DnsEntry>();
  const queries: SeenQuery[] = [];
  let silentAll = false;
  socket.on('message', (message: Buffer, from: RemoteInfo) => {
    const query = parseQuery(message);
    if (query === undefined) return;
    queries.push({ name: query.name, type: typeName(query.type), at: performance.now() });
    const entry = table.get(query.name);
    if (silentAll || entry?.silent === true) return;
    const reply = answer(message, query, entry);
    socket.send(reply, from.port, from.address);
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  socket.unref();
  const port = socket.address().port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    set: (name, entry) => void table.set(name.toLowerCase(), entry),
    delete: (name) => void table.delete(name.toLowerCase()),
    silenceAll: (on) => void (silentAll = on),
    queries,
    count: (name, type) => queries.filter((q) => q.name === name.toLowerCase() && (type === undefined || q.type === type)).length,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

interface Query {
  readonly id: number;
  readonly name: string;
  readonly type: number;
  /** The question section as received (name, type, class), echoed in the reply. */
  readonly question: Buffer;
}

function typeName(code: number): string {
  return (Object.keys(TYPE_CODES) as DnsType[]).find((type) => TYPE_CODES[type] === code) ?? String(code);
}

/** The first question of a query; undefined for anything malformed or with pointers in the question. */
function parseQuery(message: Buffer): Query | undefined {
  if (message.length < 12 || message.readUInt16BE(4) < 1) return undefined;
  const labels: string[] = [];
  let offset = 12;
  for (;;) {
    if (offset >= message.length) return undefined;
    const length = message[offset]!;
    offset++;
    if (length === 0) break;
    if (length > 63 || offset + length > message.length) return undefined;
    labels.push(message.toString('latin1', offset, offset + length));
    offset += length;
  }
  if (offset + 4 > message.length) return undefined;
  const type = message.readUInt16BE(offset);
  const question = message.subarray(12, offset + 4);
  return { id: message.readUInt16BE(0), name: labels.join('.').toLowerCase(), type, question };
}

function encodeName(name: string): Buffer {
  const parts = name.replace(/\.$/, '').split('.').filter((label) => label !== '');
  return Buffer.concat([...parts.map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, 'latin1')])), Buffer.from([0])]);
}

function encodeIPv6(address: string): Buffer {
  const [head = '', tail] = address.split('::');
  const groups = (text: string): string[] => (text === '' ? [] : text.split(':'));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const bytes = Buffer.alloc(16);
  all.forEach((group, i) => bytes.writeUInt16BE(parseInt(group, 16), i * 2));
  return bytes;
}

function record(name: Buffer, type: number, ttl: number, data: Buffer): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(1, 2); // class IN
  fixed.writeUInt32BE(ttl, 4);
  fixed.writeUInt16BE(data.length, 8);
  return Buffer.concat([name, fixed, data]);
}

function answer(message: Buffer, query: Query, entry: DnsEntry | undefined): Buffer {
  const rcode: Rcode = entry === undefined ? 'NXDOMAIN' : (entry.rcode ?? 'NOERROR');
  const answers: Buffer[] = [];
  if (entry !== undefined && rcode === 'NOERROR') {
    const owner = encodeName(query.name);
    const ttl = entry.ttl ?? 60;
    if (query.type === TYPE_CODES.A) for (const ip of entry.a ?? []) if (isIPv4(ip)) answers.push(record(owner, query.type, ttl, Buffer.from(ip.split('.').map(Number))));
    if (query.type === TYPE_CODES.AAAA) for (const ip of entry.aaaa ?? []) if (isIPv6(ip)) answers.push(record(owner, query.type, ttl, encodeIPv6(ip)));
    if (query.type === TYPE_CODES.SRV) {
      for (const srv of entry.srv ?? []) {
        const fixed = Buffer.alloc(6);
        fixed.writeUInt16BE(srv.priority, 0);
        fixed.writeUInt16BE(srv.weight, 2);
        fixed.writeUInt16BE(srv.port, 4);
        answers.push(record(owner, query.type, ttl, Buffer.concat([fixed, encodeName(srv.target)])));
      }
    }
  }
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.id, 0);
  const rd = message[2]! & 0x01;
  // QR, opcode QUERY, AA, the client's RD; RA; the code.
  header[2] = 0x80 | 0x04 | rd;
  header[3] = 0x80 | RCODES[rcode];
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  return Buffer.concat([header, query.question, ...answers]);
}
