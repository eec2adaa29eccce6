/**
 * `node bench/compress.ts`: CPU cost and ratio of each coding and level of
 * the `compress` filter's encoders (src/compress/codec.ts), on a mixed
 * JSON/HTML corpus generated deterministically (seeded), fed in 16 KiB
 * chunks as a proxied body arrives. Not part of `npm test`; run it alone
 * (it measures this process's CPU time, so other load on the core skews it
 * less than wall time but still some).
 *
 * Columns: CPU ms per MiB of input (user + system, best of 3 runs), and the
 * ratio (input / output). "flush" rows flush after every chunk, as for
 * streams and server-sent events.
 */
import { Encoder, type Coding } from '../src/compress/codec.ts';
import { mulberry32 as random } from '../test/helpers/prng.ts';

const WORDS = 'the a load balancer proxy request response header body route pool backend health check stream event cache token user order item price status active pending shipped'.split(' ');

/** ~4 MiB: half JSON API responses, half HTML pages. */
function corpus(size = 4 * 1024 * 1024): Buffer {
  const next = random(2024);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
  const sentence = (n: number) => Array.from({ length: n }, () => pick(WORDS)).join(' ');
  const parts: string[] = [];
  let length = 0;
  for (let i = 0; length < size; i++) {
    const part =
      i % 2 === 0
        ? JSON.stringify({ items: Array.from({ length: 40 }, (_, j) => ({ id: i * 100 + j, sku: `SKU-${Math.floor(next() * 1e6).toString(36)}`, name: sentence(3), price: Math.round(next() * 1e5) / 100, status: pick(['active', 'pending', 'shipped']), tags: [pick(WORDS), pick(WORDS)], updatedAt: new Date(1.7e12 + Math.floor(next() * 1e10)).toISOString() })) })
        : `<!doctype html><html><head><title>${sentence(4)}</title><link rel="stylesheet" href="/s.css"></head><body><nav><ul>${Array.from({ length: 8 }, () => `<li><a href="/${pick(WORDS)}">${pick(WORDS)}</a></li>`).join('')}</ul></nav><main>${Array.from({ length: 12 }, () => `<article class="card"><h2>${sentence(5)}</h2><p>${sentence(40)}</p><span data-id="${Math.floor(next() * 1e9)}">${sentence(2)}</span></article>`).join('')}</main></body></html>`;
    parts.push(part);
    length += part.length;
  }
  return Buffer.from(parts.join('\n')).subarray(0, size);
}

const CHUNK = 16 * 1024;

function measure(data: Buffer, coding: Coding, level: number, flush: boolean): { cpuMsPerMiB: number; ratio: number } {
  let best = Infinity;
  let out = 0;
  for (let run = 0; run < 3; run++) {
    const start = process.cpuUsage();
    const encoder = new Encoder(coding, { level });
    let bytes = 0;
    for (let at = 0; at < data.length; at += CHUNK) bytes += encoder.write(data.subarray(at, at + CHUNK), flush).length;
    bytes += encoder.finish().length;
    const used = process.cpuUsage(start);
    best = Math.min(best, (used.user + used.system) / 1000);
    out = bytes;
  }
  return { cpuMsPerMiB: best / (data.length / 2 ** 20), ratio: data.length / out };
}

const data = corpus();
const rows: [Coding, number, boolean][] = [
  ['zstd', 1, false], ['zstd', 3, false], ['zstd', 6, false], ['zstd', 9, false],
  ['br', 1, false], ['br', 4, false], ['br', 5, false],
  ['gzip', 1, false], ['gzip', 4, false], ['gzip', 6, false], ['gzip', 9, false],
  ['zstd', 3, true], ['br', 4, true], ['gzip', 4, true],
];
console.log(`corpus: ${(data.length / 2 ** 20).toFixed(1)} MiB mixed JSON/HTML, ${CHUNK / 1024} KiB chunks, Node ${process.version}\n`);
console.log('| coding | level | mode | CPU ms/MiB | ratio |');
console.log('|---|---|---|---|---|');
for (const [coding, level, flush] of rows) {
  const { cpuMsPerMiB, ratio } = measure(data, coding, level, flush);
  console.log(`| ${coding} | ${level} | ${flush ? 'flush per chunk' : 'whole body'} | ${cpuMsPerMiB.toFixed(1)} | ${ratio.toFixed(2)} |`);
}
// Brotli's default quality (11) on a 256 KiB slice only: on the whole corpus it would take seconds.
const slice = data.subarray(0, 256 * 1024);
const { cpuMsPerMiB, ratio } = measure(slice, 'br', 11 as number, false);
console.log(`| br | 11 (256 KiB slice; refused by the config) | whole body | ${cpuMsPerMiB.toFixed(1)} | ${ratio.toFixed(2)} |`);
