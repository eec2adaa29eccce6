/**
 * Label and field selectors as the API server parses them
 * (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/):
 * `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x,y)`, joined by
 * commas (all must hold). Field selectors take `=`, `==`, `!=` only.
 */
import type { FakeKind, FakeObject } from './kinds.ts';

export type Matcher = (object: FakeObject) => boolean;

export class SelectorError extends Error {}

/** Splits on commas outside parentheses. */
function requirements(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

const KEY = /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?\/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$/;

export function parseLabelSelector(text: string | null): Matcher {
  if (text === null || text.trim() === '') return () => true;
  const checks: ((labels: Record<string, string>) => boolean)[] = [];
  for (const requirement of requirements(text)) {
    let match: RegExpExecArray | null;
    if ((match = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(requirement)) !== null) {
      const [, key, op, list] = match as unknown as [string, string, string, string];
      if (!KEY.test(key)) throw new SelectorError(`invalid label key "${key}"`);
      const values = new Set(list.split(',').map((v) => v.trim()).filter((v) => v !== ''));
      checks.push(op === 'in' ? (l) => l[key] !== undefined && values.has(l[key]!) : (l) => l[key] === undefined || !values.has(l[key]!));
    } else if ((match = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(requirement)) !== null) {
      const [, key, op, value] = match as unknown as [string, string, string, string];
      if (!KEY.test(key)) throw new SelectorError(`invalid label key "${key}"`);
      checks.push(op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value);
    } else if ((match = /^!\s*(\S+)$/.exec(requirement)) !== null) {
      const key = match[1]!;
      if (!KEY.test(key)) throw new SelectorError(`invalid label key "${key}"`);
      checks.push((l) => l[key] === undefined);
    } else if (KEY.test(requirement)) {
      checks.push((l) => l[requirement] !== undefined);
    } else {
      throw new SelectorError(`unable to parse requirement: "${requirement}"`);
    }
  }
  return (object) => {
    const labels = object.metadata.labels ?? {};
    return checks.every((check) => check(labels));
  };
}

export function parseFieldSelector(text: string | null, kind: FakeKind): Matcher {
  if (text === null || text.trim() === '') return () => true;
  const checks: Matcher[] = [];
  for (const requirement of requirements(text)) {
    const match = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(requirement);
    if (match === null) throw new SelectorError(`invalid selector: '${requirement}'; can't understand '${requirement}'`);
    const [, field, op, value] = match as unknown as [string, string, string, string];
    let read: (object: FakeObject) => string | undefined;
    if (field === 'metadata.name') read = (o) => o.metadata.name;
    else if (field === 'metadata.namespace') read = (o) => o.metadata.namespace ?? '';
    else if (kind.fields?.[field] !== undefined) read = kind.fields[field];
    else throw new SelectorError(`field label not supported: ${field}`);
    checks.push(op === '!=' ? (o) => read(o) !== value : (o) => read(o) === value);
  }
  return (object) => checks.every((check) => check(object));
}
