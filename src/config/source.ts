/**
 * Read YAML (or JSON) text into a plain value plus a map from key path to
 * source position, so every later error can point at `file:line:col`.
 *
 * Walks the `yaml` package's document tree instead of calling `toJS()` to keep
 * positions, to report duplicate keys with both locations, to interpolate
 * `${VAR}` per scalar (an environment value can never change the structure),
 * and to remember which values came from the environment so messages show the
 * template, never the (possibly secret) value.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { interpolate } from './env.ts';
import { formatPath, type ConfigIssue, type KeyPath } from './issues.ts';

/** A 1-based source position. */
export interface Position {
  readonly line: number;
  readonly column: number;
}

/** Where a value, and the key that names it, are in the source. */
export interface NodePosition {
  readonly key?: Position | undefined;
  readonly value: Position;
}

/** The scalar type the schema expects at a path (used to type interpolated text). */
export type ScalarType = 'number' | 'integer' | 'boolean';

/** Options for {@link readSource}. */
export interface ReadSourceOptions {
  readonly fileName: string;
  readonly format: 'yaml' | 'json';
  readonly env: NodeJS.ProcessEnv;
  /** Interpolated text at a path where this returns a type is read as that type (`weight: ${W}` → 3). */
  readonly scalarTypeAt?: ((path: KeyPath) => ScalarType | undefined) | undefined;
}

/** The document as a plain value with positions. `value` is undefined when `syntaxErrors` is non-empty. */
export interface SourceTree {
  readonly value: unknown;
  /** Positions by formatted key path. */
  readonly positions: ReadonlyMap<string, NodePosition>;
  /** The `${VAR}` templates of values that were interpolated, by formatted key path (show these, not the values). */
  readonly templates: ReadonlyMap<string, string>;
  /** Paths whose value could not be read (already reported); later checks skip them. */
  readonly unreadable: ReadonlySet<string>;
  readonly syntaxErrors: readonly ConfigIssue[];
  readonly errors: readonly ConfigIssue[];
  readonly warnings: readonly ConfigIssue[];
}

/** Bounds that keep alias expansion ("billion laughs") and deep nesting cheap. */
const MAX_NODES = 100_000;
const MAX_DEPTH = 64;

interface Walk {
  readonly options: ReadSourceOptions;
  readonly doc: Document;
  readonly lines: LineCounter;
  readonly positions: Map<string, NodePosition>;
  readonly templates: Map<string, string>;
  readonly unreadable: Set<string>;
  readonly errors: ConfigIssue[];
  readonly aliases: Map<Node, Node | undefined>;
  nodes: number;
}

/**
 * `{` and `}` end a plain scalar inside a flow mapping, so YAML reads
 * `{ secret: ${KEY} }` as broken. Before parsing, the braces of each `${...}`
 * are swapped for two private-use characters (same length, so positions do not
 * move) and swapped back in every scalar and message afterwards.
 */
const OPEN = '\uE000';
const CLOSE = '\uE001';
const REFERENCE_IN_TEXT = /\$\{([^{}\n]*)\}/g;

function protectReferences(text: string): string {
  if (text.includes(OPEN) || text.includes(CLOSE) || !text.includes('${')) return text;
  return text.replace(REFERENCE_IN_TEXT, `$${OPEN}$1${CLOSE}`);
}

function restoreReferences(text: string): string {
  return text.includes(OPEN) ? text.replaceAll(`$${OPEN}`, '${').replaceAll(CLOSE, '}') : text;
}

/** Parse `text` and convert it to a plain value with positions. Never throws. */
export function readSource(source: string, options: ReadSourceOptions): SourceTree {
  const text = protectReferences(source);
  const lines = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter: lines,
    prettyErrors: false,
    uniqueKeys: false,
    schema: options.format === 'json' ? 'json' : 'core',
  });
  const at = (offset: number): Position => {
    const { line, col } = lines.linePos(offset);
    return { line, column: col };
  };
  const kind = options.format === 'json' ? 'JSON' : 'YAML';
  const syntaxErrors = doc.errors
    // After the first error the parser often reports every following token as unexpected: noise.
    .filter((error, index) => index === 0 || error.code !== 'UNEXPECTED_TOKEN')
    .map((error) => {
      // `path: -` inside { } is a block-sequence dash to YAML, a common surprise.
      const hint = error.code === 'BLOCK_IN_FLOW' && text[error.pos[0]] === '-' ? '; inside { } or [ ] quote a lone "-", e.g. path: "-"' : '';
      const message = error.code === 'MULTIPLE_DOCS' ? 'the file holds more than one document (a second "---"); usher reads one' : firstLine(error.message);
      return issue(options.fileName, at(error.pos[0]), [], `${kind} syntax error: ${restoreReferences(message)}${hint}`);
    });
  const warnings = doc.warnings.map((warning) => issue(options.fileName, at(warning.pos[0]), [], restoreReferences(firstLine(warning.message))));
  const walk: Walk = { options, doc, lines, positions: new Map(), templates: new Map(), unreadable: new Set(), errors: [], aliases: new Map(), nodes: 0 };
  const root = doc.contents;
  walk.positions.set('', { value: root?.range ? at(root.range[0]) : { line: 1, column: 1 } });
  const value = syntaxErrors.length > 0 ? undefined : toValue(walk, root, [], 0);
  return {
    value,
    positions: walk.positions,
    templates: walk.templates,
    unreadable: walk.unreadable,
    syntaxErrors,
    errors: walk.errors,
    warnings,
  };
}

function toValue(walk: Walk, node: Node | null | undefined, path: KeyPath, depth: number): unknown {
  if (node === null || node === undefined) return null;
  if (++walk.nodes > MAX_NODES || depth > MAX_DEPTH) {
    if (walk.nodes === MAX_NODES + 1 || depth === MAX_DEPTH + 1) {
      fail(walk, node, path, `the document is too large or too deeply nested (more than ${MAX_NODES} values or ${MAX_DEPTH} levels, counting aliases)`);
    }
    return null;
  }
  if (isAlias(node)) {
    // Alias.resolve searches the whole document; cache it or expansion is quadratic.
    let target = walk.aliases.get(node);
    if (target === undefined && !walk.aliases.has(node)) {
      target = node.resolve(walk.doc);
      walk.aliases.set(node, target);
    }
    if (target === undefined) return fail(walk, node, path, `unknown alias *${node.source}`);
    return toValue(walk, target, path, depth + 1);
  }
  if (isScalar(node)) return scalarValue(walk, node.value, node, path);
  if (isSeq(node)) {
    return node.items.map((item, index) => {
      const itemPath = [...path, index];
      record(walk, itemPath, undefined, item as Node | null);
      return toValue(walk, item as Node | null, itemPath, depth + 1);
    });
  }
  if (isMap(node)) return mapValue(walk, node.items, path, depth);
  return fail(walk, node, path, 'unsupported YAML node');
}

function mapValue(walk: Walk, pairs: readonly { key: unknown; value: unknown }[], path: KeyPath, depth: number): unknown {
  const out: Record<string, unknown> = {};
  const seen = new Map<string, number>();
  for (const pair of pairs) {
    const keyNode = pair.key as Node | null;
    const valueNode = pair.value as Node | null;
    const rawKey: unknown = isScalar(keyNode) ? keyNode.value : undefined;
    const keyPos = keyNode?.range ? position(walk, keyNode.range[0]) : undefined;
    if (typeof rawKey !== 'string' && typeof rawKey !== 'number' && typeof rawKey !== 'boolean') {
      walk.errors.push(issue(walk.options.fileName, keyPos ?? walk.positions.get(formatPath(path))?.value, path, 'mapping keys must be plain strings'));
      continue;
    }
    const key = restoreReferences(String(rawKey));
    const keyPath = [...path, key];
    if (key === '__proto__') {
      walk.errors.push(issue(walk.options.fileName, keyPos, keyPath, 'the key "__proto__" is not allowed'));
      continue;
    }
    const firstLine = seen.get(key);
    if (firstLine !== undefined) {
      walk.errors.push(issue(walk.options.fileName, keyPos, keyPath, `duplicate key "${key}" (first defined on line ${firstLine})`));
      continue;
    }
    seen.set(key, keyPos?.line ?? 0);
    record(walk, keyPath, keyPos, valueNode);
    out[key] = toValue(walk, valueNode, keyPath, depth + 1);
  }
  return out;
}

function scalarValue(walk: Walk, raw: unknown, node: Node, path: KeyPath): unknown {
  const value = typeof raw === 'string' ? restoreReferences(raw) : raw;
  if (typeof value === 'string') {
    const result = interpolate(value, walk.options.env);
    if (!result.ok) return fail(walk, node, path, result.message);
    if (!result.value.interpolated) return result.value.text;
    walk.templates.set(formatPath(path), value);
    return typed(result.value.text, walk.options.scalarTypeAt?.(path));
  }
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  return fail(walk, node, path, 'unsupported YAML value; use a string, number, true/false, list or mapping');
}

/** Interpolated text where the schema expects a number or boolean is read as one, if it looks like one. */
function typed(text: string, type: ScalarType | undefined): unknown {
  if ((type === 'number' || type === 'integer') && /^[-+]?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (type === 'boolean' && (text === 'true' || text === 'false')) return text === 'true';
  return text;
}

function record(walk: Walk, path: KeyPath, key: Position | undefined, valueNode: Node | null): void {
  const value = valueNode?.range ? position(walk, valueNode.range[0]) : key;
  if (value !== undefined) walk.positions.set(formatPath(path), { key, value });
}

function position(walk: Walk, offset: number): Position {
  const { line, col } = walk.lines.linePos(offset);
  return { line, column: col };
}

function fail(walk: Walk, node: Node, path: KeyPath, message: string): null {
  const where = node.range ? position(walk, node.range[0]) : walk.positions.get(formatPath(path))?.value;
  walk.errors.push(issue(walk.options.fileName, where, path, message));
  walk.unreadable.add(formatPath(path));
  return null;
}

function issue(file: string, where: Position | undefined, path: KeyPath, message: string): ConfigIssue {
  return { file, line: where?.line, column: where?.column, path: formatPath(path), message };
}

function firstLine(message: string): string {
  const end = message.indexOf(' at line ');
  return (end === -1 ? message : message.slice(0, end)).split('\n')[0] ?? message;
}
