/**
 * The JSON Schema of the config *file* (input side: durations and addresses
 * are strings), for `usher schema` and editor completion, generated from the
 * zod schema. The loader also reads it to list the keys allowed at a path
 * (typo suggestions) and the scalar type expected there (`${VAR}` typing).
 *
 * Known gap: string patterns accept `${VAR}`, but integer and boolean keys
 * (`weight`, `hashBalanceFactor`, `accessLog.enabled`) do not, so an editor
 * flags `weight: ${W}` although the loader accepts it. Keys that take a number
 * or text (percentages, `expectStatus`, sizes) have no single scalar type, so
 * `${VAR}` there stays text, which those keys also accept.
 */
import { z } from 'zod';
import type { KeyPath } from './issues.ts';
import { configSchema } from './schema.ts';
import { CODE_ONLY } from './values.ts';
import type { ScalarType } from './source.ts';

/** The subset of JSON Schema that usher's generated schema uses. */
export interface JsonSchemaNode {
  readonly type?: string | readonly string[];
  readonly description?: string;
  readonly default?: unknown;
  readonly examples?: readonly unknown[];
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  readonly pattern?: string;
  readonly format?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minItems?: number;
  readonly minLength?: number;
  readonly properties?: Readonly<Record<string, JsonSchemaNode>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: JsonSchemaNode | boolean;
  readonly propertyNames?: JsonSchemaNode;
  readonly items?: JsonSchemaNode;
  readonly anyOf?: readonly JsonSchemaNode[];
  /** Marks secrets: messages never show their values. */
  readonly writeOnly?: boolean;
  readonly [keyword: string]: unknown;
}

let cached: JsonSchemaNode | undefined;

function build(): JsonSchemaNode {
  const generated = z.toJSONSchema(configSchema, {
    io: 'input',
    target: 'draft-2020-12',
    // zod drops `examples` from schemas that transform (it assumes they show the
    // output); ours are written in the input format, so put them back.
    override: ({ zodSchema, jsonSchema }) => {
      const examples: unknown = z.globalRegistry.get(zodSchema)?.examples;
      if (Array.isArray(examples) && jsonSchema.examples === undefined) jsonSchema.examples = examples;
    },
  }) as JsonSchemaNode;
  return deepFreeze({
    ...withoutCodeOnly(generated),
    title: 'usher configuration',
    description: 'The usher load balancer config file (YAML or JSON). See docs/config.md.',
  });
}

/** `node` without the alternatives marked {@link CODE_ONLY} (and without the mark). */
function withoutCodeOnly(node: JsonSchemaNode): JsonSchemaNode {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === CODE_ONLY) continue;
    if (key === 'anyOf' && Array.isArray(value)) {
      out[key] = (value as JsonSchemaNode[]).filter((option) => option[CODE_ONLY] !== true).map(withoutCodeOnly);
    } else if (Array.isArray(value)) {
      out[key] = value.map((item: unknown) => (isNode(item) ? withoutCodeOnly(item) : item));
    } else {
      out[key] = isNode(value) ? withoutCodeOnly(value) : value;
    }
  }
  return out as JsonSchemaNode;
}

function isNode(value: unknown): value is JsonSchemaNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** The shared, frozen JSON Schema (built once). */
export function configJsonSchemaNode(): JsonSchemaNode {
  cached ??= build();
  return cached;
}

/** The JSON Schema (draft 2020-12) of the config file format, as a fresh mutable object. */
export function configJsonSchema(): object {
  return structuredClone(configJsonSchemaNode());
}

/** The schema node describing the value at `path`, or undefined if the path is not part of the format. */
export function jsonSchemaAt(path: KeyPath): JsonSchemaNode | undefined {
  let node: JsonSchemaNode | undefined = configJsonSchemaNode();
  for (const part of path) {
    if (node === undefined) return undefined;
    // `true` or a mapping (a backend's tls): keys are the mapping's.
    if (node.properties === undefined) node = node.anyOf?.find((option) => option.properties !== undefined) ?? node;
    if (typeof part === 'number') node = node.items;
    else if (node.properties !== undefined && Object.hasOwn(node.properties, part)) node = node.properties[part];
    else node = typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined;
  }
  return node;
}

/** The keys a mapping at `path` allows (empty for free-form mappings). */
export function knownKeysAt(path: KeyPath): readonly string[] {
  const node = jsonSchemaAt(path);
  const mapping = node?.properties === undefined ? node?.anyOf?.find((option) => option.properties !== undefined) : node;
  return Object.keys(mapping?.properties ?? {});
}

/** The number or boolean type the format expects at `path`, if any. */
export function scalarTypeAt(path: KeyPath): ScalarType | undefined {
  const type = jsonSchemaAt(path)?.type;
  return type === 'number' || type === 'integer' || type === 'boolean' ? type : undefined;
}

/** True when the value at `path` is a secret (`writeOnly` in the schema): messages must not show it. */
export function isSecretAt(path: KeyPath): boolean {
  return jsonSchemaAt(path)?.writeOnly === true;
}
