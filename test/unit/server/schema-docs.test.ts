import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { customizationReference } from '../../../common/schema/docs.js';
import { CustomizationItemSchema } from '../../../common/schema/api.js';
import { NAME_PATTERN } from '../../../common/schema/builders.js';
import { validateCustomizations } from '../../../common/schema/validate.js';
import { NAME_RE } from '../../../server/store/images.js';

const DOC = join(import.meta.dirname, '..', '..', '..', 'docs', 'customizations.md');
const BEGIN = '<!-- generated from common/schema/api.ts: begin -->';
const END = '<!-- generated from common/schema/api.ts: end -->';

describe('docs/customizations.md', () => {
  it('holds the reference written from the customization item schema', () => {
    const text = readFileSync(DOC, 'utf8');
    const want = `${BEGIN}\n${customizationReference()}${END}`;
    const have = text.slice(text.indexOf(BEGIN), text.indexOf(END) + END.length);
    // FERRY_WRITE_DOCS=1 rewrites the section after a schema change.
    if (process.env.FERRY_WRITE_DOCS === '1' && have !== want) writeFileSync(DOC, text.replace(have, () => want));
    expect(have).toBe(want);
  });
  it('names every kind of the schema, and its examples pass the schema', () => {
    const text = readFileSync(DOC, 'utf8');
    for (const b of (CustomizationItemSchema as any).oneOf) expect(text).toContain(`### \`${b.properties.kind.const}\``);
    const example = /```json\n([\s\S]*?)```/.exec(text)![1];
    expect(validateCustomizations(JSON.parse(example))).toHaveLength(4);
  });
  it('URL names and body names follow one rule', () => {
    expect(NAME_RE.source).toBe(NAME_PATTERN);
  });
});
