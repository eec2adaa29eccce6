/**
 * Regenerates docs/config.md from the config schema and examples/usher.yaml.
 * Run: node scripts/gen-config-docs.ts   (a unit test fails when the committed file is stale)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderConfigDocs } from '../src/config/docs.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const example = readFileSync(`${root}examples/usher.yaml`, 'utf8');
writeFileSync(`${root}docs/config.md`, renderConfigDocs(example));
process.stdout.write('wrote docs/config.md\n');
