/**
 * The operator's reference of the customization items, written from the schema itself
 * (common/schema/api.ts): docs/customizations.md holds this text between its markers, and
 * test/unit/server/schema-docs.test.ts fails when the two differ.
 */
import { CustomizationItemSchema } from './api.js';

type Json = Record<string, any>;

function typeOf(s: Json): string {
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.enum) return s.enum.map((v: string) => `\`${v}\``).join(', ');
  if (s.type === 'array') return `array of ${typeOf(s.items)}s`;
  if (s.format === 'regexp') return 'regular expression';
  return String(s.type);
}

function rule(name: string, s: Json): string {
  const parts: string[] = [];
  if (s.description) parts.push(s.description);
  if (s.pattern === '^/') parts.push('an absolute path inside the image');
  else if (s.pattern) parts.push(`matches \`${s.pattern}\``);
  if (s.minimum !== undefined) parts.push(`≥ ${s.minimum}`);
  if (name === 'mode') parts.push('JSON numbers are decimal: write 0644 as 420');
  if (s.format === 'regexp') parts.push('JavaScript syntax, checked when the items are recorded');
  return parts.join('; ') || '';
}

/** The Markdown reference: one section per kind, one table row per field. */
export function customizationReference(): string {
  const out: string[] = [];
  for (const branch of (CustomizationItemSchema as Json).oneOf as Json[]) {
    const kind = branch.properties.kind.const as string;
    const required = new Set<string>(branch.required ?? []);
    out.push(`### \`${kind}\``, '', branch.description, '');
    out.push('| field | type | required | rule |', '|---|---|---|---|');
    for (const [name, s] of Object.entries(branch.properties as Record<string, Json>)) {
      out.push(`| \`${name}\` | ${typeOf(s)} | ${required.has(name) ? 'yes' : 'no'} | ${rule(name, s)} |`);
    }
    out.push('');
  }
  return out.join('\n');
}
