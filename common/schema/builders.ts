/**
 * The building blocks of the wire contract's schemas (api.ts): patterns of names, references and
 * keys, and the TypeBox helpers that attach the operator's problem text (`ferryMessage`) and a
 * refusal's code (`contract`).
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

/** Names of nodes, images and groups: as on the command line (no "/", no ".."). */
export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$';
export const NAME_BODY = '[A-Za-z0-9][A-Za-z0-9._-]{0,127}';
export const IMAGE_REF_PATTERN = `^${NAME_BODY}(@[0-9]+)?$`;
export const TTL_PATTERN = '^[0-9]+[smhd]?$';
export const KEY_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$';
/** A node selector as on the command line: NAME, @GROUP or PROPERTY=VALUE. */
export const SELECTOR_PATTERN = `^(?:@?${NAME_BODY}|(?!@)[^=]*=[\\s\\S]*)$`;

/**
 * Mark a top-level schema with the error code of a refusal and the name of what it checks
 * ("the events body"); validate.ts answers with them (annotation keywords ferryCode, ferryWhat).
 */
export function contract<T extends TSchema>(schema: T, code: string, what: string): T {
  return Object.assign(schema, { ferryCode: code, ferryWhat: what });
}

/** A string that is one of `values` (a plain `enum`: one problem, not one per alternative). */
export function Enum<const T extends readonly string[]>(values: T, o: Record<string, unknown> = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ferryMessage: `must be one of ${values.join(', ')}`, ...o });
}

/** An object of strings whose keys are input/property names. */
export function StringMap(o: Record<string, unknown> = {}) {
  return Type.Unsafe<Record<string, string>>({
    type: 'object',
    propertyNames: { type: 'string', pattern: KEY_PATTERN, ferryMessage: 'key may hold only letters, digits, "_", "." and "-"' },
    additionalProperties: { type: 'string', ferryMessage: 'must be a string' },
    ferryMessage: 'must be an object of strings',
    ...o,
  });
}

export const StringList = (ferryMessage = 'must be an array of strings') => Type.Array(Type.String(), { ferryMessage });
export const Mac = Type.String({ format: 'mac', ferryMessage: 'is not a MAC address (aa:bb:cc:dd:ee:ff)' });
export const Name = (what: string) => Type.String({ pattern: NAME_PATTERN, ferryMessage: `must be a ${what} name` });
export const ImageRef = Type.String({ pattern: IMAGE_REF_PATTERN, ferryMessage: 'must be an image name, optionally NAME@VERSION' });
export const LayoutRef = Type.String({ minLength: 1, ferryMessage: 'must be the layout XML or a stored layout digest' });
export const Ttl = Type.String({ pattern: TTL_PATTERN, ferryMessage: 'must be a duration such as "6h"' });
export const AnyObject = Type.Unsafe<Record<string, unknown>>({ type: 'object', ferryMessage: 'must be an object' });

/**
 * A union told apart by one property (`kind`, `status`): ajv picks the branch by that value
 * (its `discriminator` keyword), so a bad item gets the problems of its own kind only.
 */
export function Tagged<const T extends TSchema[]>(tag: string, branches: [...T], o: Record<string, unknown> = {}) {
  return Type.Unsafe<Static<T[number]>>({ type: 'object', required: [tag], properties: { [tag]: { type: 'string' } }, discriminator: { propertyName: tag }, oneOf: branches, ...o });
}
