/**
 * Renders docs/config.md from the JSON Schema (itself generated from the zod
 * schema), so the reference cannot drift from what the loader accepts. Prose
 * about value formats lives here; every key's type, default, description and
 * example come from the schema. `scripts/gen-config-docs.ts` writes the file; a
 * test re-renders it and fails when the committed copy is stale.
 */
import { stringify } from 'yaml';
import { formatByteSize, MAX_BYTES } from './byte-size.ts';
import { BYTE_SIZE_SCHEMA_PATTERN, CIDR_PATTERN, DURATION_SCHEMA_PATTERN, HASH_KEY_PATTERN, HOST_PORT_PATTERN, PERCENT_PATTERN, STATUS_LIST_PATTERN } from './values.ts';
import { configJsonSchemaNode, type JsonSchemaNode } from './json-schema.ts';

/** Render the whole of docs/config.md; `example` is the text of examples/usher.yaml. */
export function renderConfigDocs(example: string): string {
  const sections: string[] = [];
  collectSections(configJsonSchemaNode(), 'Top level', '', sections);
  return [HEADER, ...sections, RULES, `## Complete example\n\nFrom \`examples/usher.yaml\`:\n\n\`\`\`yaml\n${example.trimEnd()}\n\`\`\`\n`].join('\n');
}

function collectSections(node: JsonSchemaNode, title: string, prefix: string, out: string[]): void {
  const properties = Object.entries(node.properties ?? {});
  const required = new Set(node.required ?? []);
  const rows = properties.map(([key, child]) => row(key, child, required.has(key)));
  const intro = node.description !== undefined && prefix !== '' ? `${node.description}\n\n` : '';
  out.push(`### ${title}\n\n${intro}| Key | Type | Default | Description | Example |\n|---|---|---|---|---|\n${rows.join('\n')}\n`);
  for (const [key, child] of properties) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    const nested = objectOf(child);
    if (nested !== undefined) collectSections(nested.node, `\`${path}${nested.suffix}\``, `${path}${nested.suffix}`, out);
  }
}

/** The object schema nested in a property (directly, as one alternative, as list items, or as mapping values), if any. */
function objectOf(node: JsonSchemaNode): { readonly node: JsonSchemaNode; readonly suffix: string } | undefined {
  if (node.properties !== undefined) return { node, suffix: '' };
  const alternative = node.anyOf?.find((option) => option.properties !== undefined);
  if (alternative !== undefined) return { node: { ...alternative, description: alternative.description ?? node.description }, suffix: '' };
  if (node.items?.properties !== undefined) return { node: node.items, suffix: '[]' };
  const values = node.additionalProperties;
  if (typeof values === 'object' && values.properties !== undefined) return { node: values, suffix: '.<name>' };
  return undefined;
}

function row(key: string, node: JsonSchemaNode, required: boolean): string {
  const cells = [`\`${key}\``, typeOf(node), defaultOf(node, required), node.description ?? '', exampleOf(node)];
  return `| ${cells.map((cell) => cell.replaceAll('|', '\\|').replaceAll('\n', ' ')).join(' | ')} |`;
}

const NAMED_PATTERNS: Readonly<Record<string, string>> = {
  [DURATION_SCHEMA_PATTERN]: 'duration',
  [HOST_PORT_PATTERN]: 'host:port',
  [HASH_KEY_PATTERN]: 'hash key',
  [PERCENT_PATTERN]: '`"N%"`',
  [STATUS_LIST_PATTERN]: 'status list',
  [CIDR_PATTERN]: 'IP or CIDR',
};

/** A size key (bytes, or text such as `32KiB`) reads as one type, its range in units. */
function sizeType(options: readonly JsonSchemaNode[]): string | undefined {
  if (!options.some((option) => option.pattern === BYTE_SIZE_SCHEMA_PATTERN)) return undefined;
  const bytes = options.find((option) => option.type === 'integer');
  const min = bytes?.minimum ?? 0;
  const max = bytes?.maximum ?? MAX_BYTES;
  return min === 0 && max === MAX_BYTES ? 'size' : `size ${formatByteSize(min)}–${formatByteSize(max)}`;
}

function typeOf(node: JsonSchemaNode): string {
  if (node.writeOnly === true) return `secret ${typeOf({ ...node, writeOnly: false })}`;
  if (node.const !== undefined) return `\`${String(node.const)}\``;
  if (node.enum !== undefined) return oneOf(node.enum);
  if (node.anyOf !== undefined) {
    // Alternatives that are all fixed values (`503` or `"503"`) read as one list.
    const values = node.anyOf.map((option) => option.enum);
    if (values.every((list) => list !== undefined)) return oneOf([...new Set(values.flat().map(String))]);
    return sizeType(node.anyOf) ?? node.anyOf.map(typeOf).join(' or ');
  }
  if (node.pattern !== undefined && NAMED_PATTERNS[node.pattern] !== undefined) return NAMED_PATTERNS[node.pattern] ?? 'string';
  if (node.format === 'regex') return 'regex';
  switch (node.type) {
    case 'integer':
      return node.minimum !== undefined && node.maximum !== undefined ? `integer ${node.minimum}–${node.maximum}` : 'integer';
    case 'array':
      return node.items === undefined ? 'list' : `list of ${plural(typeOf(node.items))}`;
    case 'object': {
      if (node.properties !== undefined) return 'mapping';
      const values = node.additionalProperties;
      return typeof values === 'object' ? `mapping of name → ${typeOf(values)}` : 'mapping';
    }
    case 'boolean':
      return 'boolean';
    default:
      return typeof node.type === 'string' ? node.type : 'value';
  }
}

function oneOf(values: readonly unknown[]): string {
  return `one of ${values.map((value) => `\`${String(value)}\``).join(', ')}`;
}

function plural(type: string): string {
  return type === 'mapping' ? 'mappings' : type === 'string' ? 'strings' : type;
}

function defaultOf(node: JsonSchemaNode, required: boolean): string {
  if (required) return 'required';
  if (node.default === undefined) return '—';
  if (Array.isArray(node.default) && node.default.length === 0) return '`[]`';
  if (typeof node.default === 'object' && node.default !== null && Object.keys(node.default).length === 0) return 'see below';
  if (Array.isArray(node.default)) return `\`${stringify(node.default, { collectionStyle: 'flow', lineWidth: 0 }).trim()}\``;
  return `\`${String(node.default)}\``;
}

function exampleOf(node: JsonSchemaNode): string {
  const example = node.examples?.[0];
  if (example === undefined) return '';
  return `\`${stringify(example, { collectionStyle: 'flow', lineWidth: 0 }).trim()}\``;
}

const HEADER = `# Configuration

<!-- Generated by scripts/gen-config-docs.ts from the schema in src/config/schema.ts. Do not edit by hand: run \`node scripts/gen-config-docs.ts\`. -->

usher reads one file, YAML or JSON (\`.json\`, or content starting with \`{\`). Check it with \`usher check -c usher.yaml\`; \`usher schema\` prints its JSON Schema for editor completion (for YAML, add \`# yaml-language-server: $schema=usher.schema.json\` at the top; for JSON, a top-level \`"$schema"\` key is allowed).

## Value formats

- **Durations** are a number and a unit: \`500ms\`, \`5s\`, \`1m\`, \`1h\`, \`1d\`, or combined largest first, \`1m30s\`. Fractions are fine when the result is whole milliseconds (\`1.5s\`). A bare number is an error (is \`30\` seconds or milliseconds?), and timeouts must be greater than 0. The request-path timeouts (client \`header\`, \`keepAlive\`, \`bodyIdle\`; pool \`connect\`, \`response\`, \`idle\`) are checked every 25 ms, so one fires up to 25 ms after its time, never before.
- **Sizes** are a number of bytes (\`65536\`), or a whole number and a binary unit: \`B\`, \`KiB\` (or \`K\`), \`MiB\` (\`M\`), \`GiB\` (\`G\`), case-insensitive, with an optional space: \`32KiB\`, \`10 MiB\`. \`1K\` is 1024 bytes, as in nginx; \`KB\`, \`MB\` and \`GB\` are errors (they mean 1000 in some tools). Fractions are errors too: write \`1536KiB\`, not \`1.5MiB\`.
- **Addresses** are \`host:port\`. The host is an IPv4 address, an IPv6 address in brackets (\`[::1]:8080\`) or a hostname. Backend ports are 1–65535; a listener may bind port 0 to get a free port.
- **Environment variables**: \`\${NAME}\` in any string value is replaced by the variable; \`\${NAME:-default}\` uses \`default\` when it is unset or empty; \`$\${\` writes a literal \`\${\`. An unset variable without a default is an error naming the variable and the key. Where a key expects a number or true/false, an interpolated value is read as one (\`weight: \${WEIGHT}\`). Error messages show \`\${NAME}\`, never the value, so secrets do not reach logs; the value of a secret key (\`sticky.secret\`, \`admin.token\`) is never shown even when written in the file, only its length.
- **Match values** (\`headers\`, \`query\`, \`cookies\`) are exact strings, or a regular expression after \`~\` (\`~^v[23]$\`) that must match the whole value. Quote values YAML would read as numbers or booleans: \`"1"\`, \`"true"\`.
- **Percentages** are whole numbers, written \`50\` or \`"50%"\`.
- **Status lists** (\`expectStatus\`) are one code (\`200\`), or codes and inclusive ranges separated by commas: \`"200,204,300-399"\`. Codes are 100–599.
- **CIDRs** (\`trustedProxies\`) are an IPv4 or IPv6 address and a prefix length, \`10.0.0.0/8\`, \`2001:db8::/32\`, or a single address, \`127.0.0.1\`, \`::1\`. IPv6 is written without brackets.
- **File paths** (certificates, keys, CA bundles) are absolute, or relative to the directory of the config file.
- **Names** of listeners, routes and pools: letters, digits, \`_\`, \`.\`, \`-\`, starting with a letter or digit, at most 63 characters.

Unknown keys are errors (with a suggestion for typos), as are duplicate keys. Every problem is reported at once, sorted by line, as \`file:line:col path: message\`:

\`\`\`
usher.yaml:14:18 pools.web.backends[1].address: expected host:port, got "localhost"
usher.yaml:21:7 pools.api.algoritm: unknown key "algoritm" (did you mean "algorithm"?)
\`\`\`

## Reference
`;

const RULES = `## Rules across keys

Errors:
- A route has exactly one of \`pool\` and \`redirect\`; a \`pool\` must name a pool under \`pools\`.
- Listener names are unique; two listeners cannot bind the same address and port (\`0.0.0.0\` and \`::\` overlap every address on that port).
- A listener's \`limits.maxUriBytes\` is less than its \`maxHeaderBytes\` (defaults count): the request target is part of the request head.
- A route uses at most one of \`path\`, \`pathPrefix\` and \`pathRegex\`.
- \`hashKey\` and \`hashBalanceFactor\` are only allowed with an algorithm that hashes: \`hash\`, \`maglev\`, or a balancer module whose definition says \`hashes: true\` (elsewhere they would silently do nothing).
- A backend address appears once per pool; give it a higher \`weight\` instead.
- \`healthCheck\` keys for HTTP (\`path\`, \`expectStatus\`, \`expectBody\`, \`host\`) are not allowed with \`type: tcp\`.
- \`healthCheck.fastInterval\` is at most \`interval\`; \`outlier.maxEjectionTime\` is at least \`ejectionTime\` (defaults count).
- A retry condition is listed once.
- \`admin.bind\` on anything but a loopback address (127.0.0.0/8, \`::1\`, \`localhost\`) requires \`admin.token\`; the admin API cannot bind a listener's address and port.
- \`protocol: https\` requires \`tls\`, and no other protocol takes it. Each ALPN protocol is listed once.
- Certificate, key and CA files (\`tls.certificates[].cert\`, \`key\`, a backend's \`tls.ca\`) must be readable when the config is loaded (their content is checked when the listener or pool starts). A relative path is relative to the config file's directory.
- \`redirect\` is only allowed on \`http\` and \`https\` listeners, and \`stripPrefix\` only there and not with \`redirect\`.
- A \`tcp\` listener has exactly one route, with \`pool\` and without \`match\`.
- A \`tls-passthrough\` listener's routes match only \`sni\` (a route without \`match\` is the catch-all); \`sni\` is only allowed there.
- \`limits\` only apply to \`http\` and \`https\` listeners (\`timeouts.tunnelIdle\` applies to all).
- \`acceptProxyProtocol: true\` requires a non-empty \`trustedProxies\`.
- A backend of a pool with \`protocol: h2c\` cannot use \`tls\` (h2c is cleartext).
- \`log.destination\` cannot be the access log's file (\`accessLog.path\`).
- \`redis\` has exactly one of \`url\`, \`sentinel\` and \`cluster\`; a user or password goes in the URL or in \`username\`/\`password\`, not both; \`tls\` with a \`url\` needs \`rediss://\`; \`tls.cert\` and \`tls.key\` go together and, with \`tls.ca\`, must be readable when the config is loaded; \`redis.peerTimeout\` is at least twice \`redis.heartbeat\`.
- A \`store: redis\` rate-limit policy needs the \`redis\` section and, for now, one reached by \`url\` alone (no \`sentinel\`, \`cluster\`, \`username\`, \`password\` or \`tls\`: the rate limiter's Redis client does not use them yet).
- \`discovery.dns\` has \`name\` (with \`port\`) or \`srv\` (without \`port\`), never both.

Warnings (printed, the config still loads):
- A route after a catch-all route (no \`match\`) is never reached.
- A \`stripPrefix\` that the route's \`path\` or \`pathPrefix\` rules out never applies.
- A pool no route uses.
- A pool without backends (and without \`discovery\`), or whose backends are all \`backup: true\` (and no \`discovery\`), has no primary.
- A \`redirect\` without \`host\` or \`port\` whose scheme is the listener's own may send clients back to it in a loop.
- \`trustedProxies\` without \`acceptProxyProtocol: true\` does nothing.
- A pool used by a \`tcp\` or \`tls-passthrough\` listener ignores \`sticky\` and retries on \`502\`, \`503\` and \`504\` for those connections.
- \`log.destination: stdout\` while the access log also goes to standard output: their lines interleave.
`;
