/**
 * The one validator of the wire schemas (common/schema/api.ts): ajv, compiled once per
 * schema, reporting every problem as a Ferry Problem with a JSON path (`$.events[1].bytes`)
 * and the schema's own `ferryMessage`. The server's fastify routes compile their body
 * schemas here (server/api/app.ts), and the CLI checks files with `validate()`.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { TSchema, Static } from '@sinclair/typebox';
import { ValidationError, type Problem } from '../errors.js';
import { parseMac } from '../mac.js';
import { CustomizationsSchema, InstallEventsBodySchema, InstallResultSchema } from './api.js';

export const ajv = new Ajv({
  allErrors: true, // every problem at once, not the first
  strict: true,
  strictNumbers: true, // NaN and Infinity are not numbers
  coerceTypes: false,
  useDefaults: false,
  removeAdditional: false, // an unknown field is a problem, not silently dropped
  discriminator: true,
  verbose: true, // errors carry their schema, whose ferryMessage is the text
});
ajv.addKeyword({ keyword: 'ferryMessage', schemaType: 'string' });
// The error code and the name of what a top-level schema validates (set by contract()).
ajv.addKeyword({ keyword: 'ferryCode', schemaType: 'string' });
ajv.addKeyword({ keyword: 'ferryWhat', schemaType: 'string' });
ajv.addFormat('mac', { type: 'string', validate: (s: string) => parseMac(s) !== undefined });
ajv.addFormat('date-time', { type: 'string', validate: (s: string) => !Number.isNaN(Date.parse(s)) });
ajv.addFormat('regexp', {
  type: 'string',
  validate: (s: string) => {
    try {
      new RegExp(s);
      return true;
    } catch {
      return false;
    }
  },
});

const compiled = new WeakMap<object, ValidateFunction>();

export function compile(schema: object): ValidateFunction {
  let v = compiled.get(schema);
  if (!v) {
    v = ajv.compile(schema);
    compiled.set(schema, v);
  }
  return v;
}

/** Where in `data` a JSON pointer leads, written as Ferry writes JSON paths. */
function jsonPath(data: unknown, pointer: string, extra?: string): string {
  let path = '$';
  let cur: unknown = data;
  const segs = pointer === '' ? [] : pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) segs.push(extra);
  for (const s of segs) {
    path += Array.isArray(cur) && /^[0-9]+$/.test(s) ? `[${s}]` : `.${s}`;
    cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[s] : undefined;
  }
  return path;
}

const TYPE_WORDS: Record<string, string> = { object: 'an object', array: 'an array', string: 'a string', integer: 'an integer', number: 'a number', boolean: 'true or false', null: 'null' };

function tagValues(parentSchema: any, tag: string): string[] {
  return ((parentSchema?.oneOf ?? []) as any[]).map((b) => b?.properties?.[tag]?.const).filter((x) => typeof x === 'string');
}

function message(e: ErrorObject): string {
  const own = (e.parentSchema as any)?.ferryMessage as string | undefined;
  switch (e.keyword) {
    case 'required':
      return 'is required';
    case 'additionalProperties':
      return 'is not a known field';
    case 'discriminator': {
      const tag = (e.params as any).tag as string;
      const values = tagValues(e.parentSchema, tag);
      const v = (e.params as any).tagValue;
      return (e.params as any).error === 'mapping' ? `unknown ${tag} ${JSON.stringify(v)}: use ${values.join(', ')}` : `is required: one of ${values.join(', ')}`;
    }
    case 'maxItems':
      return own ? `${own} (${(e.data as unknown[]).length} given)` : e.message ?? 'is invalid';
    case 'type': {
      if (own) return own;
      const t = (e.params as any).type;
      return `must be ${(Array.isArray(t) ? t : String(t).split(',')).map((x: string) => TYPE_WORDS[x] ?? x).join(' or ')}`;
    }
    case 'const':
      return `must be ${JSON.stringify((e.params as any).allowedValue)}`;
    default:
      return own ?? e.message ?? 'is invalid';
  }
}

/**
 * ajv's errors as Ferry problems: one per field and rule family (a value gets the first
 * rule it breaks; a key of a map may also have a problem of its own name).
 */
export function problemsOf(errors: ErrorObject[] | null | undefined, data: unknown, code: string): Problem[] {
  const out: Problem[] = [];
  const seen = new Set<string>();
  for (const e of errors ?? []) {
    if (e.keyword === 'propertyNames' || e.keyword === 'oneOf') continue; // the inner error says it better
    let extra: string | undefined;
    let aspect = 'value';
    if (e.keyword === 'required') extra = (e.params as any).missingProperty;
    else if (e.keyword === 'additionalProperties') extra = (e.params as any).additionalProperty;
    else if (e.keyword === 'discriminator') extra = (e.params as any).tag;
    else if (e.propertyName !== undefined) {
      extra = e.propertyName;
      aspect = 'name';
    }
    const path = jsonPath(data, e.instancePath, extra);
    const key = `${aspect}\0${path}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ severity: 'error', code, path, message: message(e) });
  }
  return out;
}

/** The refusal of `value` by a top-level schema, with every problem; undefined when valid. */
export function refusal(schema: object, value: unknown, file?: string): ValidationError | undefined {
  const v = compile(schema);
  if (v(value)) return undefined;
  const code = (schema as any).ferryCode ?? 'FERRY_E_BAD_REQUEST';
  const what = (schema as any).ferryWhat ?? 'the request body';
  return new ValidationError(code, `${what}${file ? ' in ' + file : ''}`, problemsOf(v.errors, value, code), file);
}

/** Check `value` against a schema; return it typed, or throw every problem at once. */
export function validate<T extends TSchema>(schema: T, value: unknown, file?: string): Static<T> {
  const e = refusal(schema, value, file);
  if (e) throw e;
  return value as Static<T>;
}

export const validateEvents = (body: unknown) => validate(InstallEventsBodySchema, body).events;
export const validateResult = (body: unknown) => validate(InstallResultSchema, body);
export const validateCustomizations = (items: unknown, file?: string) => validate(CustomizationsSchema, items, file);
