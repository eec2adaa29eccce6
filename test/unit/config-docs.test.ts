import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { renderConfigDocs } from '../../src/config/docs.ts';
import { configJsonSchemaNode, type JsonSchemaNode } from '../../src/config/json-schema.ts';

const read = (relative: string): string => readFileSync(fileURLToPath(new URL(`../../${relative}`, import.meta.url)), 'utf8');

describe('docs/config.md', () => {
  it('is up to date with the schema and examples/usher.yaml (run: node scripts/gen-config-docs.ts)', () => {
    assert.equal(read('docs/config.md'), renderConfigDocs(read('examples/usher.yaml')));
  });

  it('has a table row for every key of the format', () => {
    const docs = renderConfigDocs('');
    const keys = new Set<string>();
    const walk = (node: JsonSchemaNode): void => {
      for (const [key, child] of Object.entries(node.properties ?? {})) {
        keys.add(key);
        walk(child);
        if (child.items !== undefined) walk(child.items);
        if (typeof child.additionalProperties === 'object') walk(child.additionalProperties);
      }
    };
    walk(configJsonSchemaNode());
    for (const key of keys) assert.match(docs, new RegExp(`^\\| \`${key.replace('$', '\\$')}\` \\|`, 'm'), key);
    assert.match(docs, /\| `connect` \| duration \| `5s` \|/);
    assert.match(docs, /\| `weight` \| integer 1–1000 \| `1` \|/);
    assert.match(docs, /\| `address` \| host:port \| required \|/);
  });
});
