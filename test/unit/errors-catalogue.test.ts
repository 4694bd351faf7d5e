import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const SOURCE_DIRS = ['cli', 'common', 'layout', 'layers', 'installer', 'server', 'scripts', 'initrd'];

function sources(dir: string): string[] {
  const out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.(ts|mjs|js|sh)$/.test(e) || !e.includes('.')) out.push(p);
  }
  return out;
}

describe('errors catalogue', () => {
  const used = new Map<string, string>();
  for (const d of SOURCE_DIRS) {
    for (const f of sources(join(ROOT, d))) {
      for (const m of readFileSync(f, 'utf8').matchAll(/FERRY_E_[A-Z0-9_]*[A-Z0-9]/g)) {
        if (!used.has(m[0])) used.set(m[0], f.slice(ROOT.length + 1));
      }
    }
  }
  const doc = readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8');
  const listed = new Set([...doc.matchAll(/^### (FERRY_E_[A-Z0-9_]+)\s*$/gm)].map((m) => m[1]));

  it('lists every code the sources use', () => {
    const missing = [...used].filter(([c]) => !listed.has(c)).map(([c, f]) => `${c} (used in ${f})`);
    expect(missing, 'add these to docs/errors.md').toEqual([]);
  });

  it('lists no code the sources no longer use', () => {
    const stale = [...listed].filter((c) => !used.has(c));
    expect(stale, 'remove these from docs/errors.md or use them').toEqual([]);
  });

  it('gives every code an explanation and a fix', () => {
    const sections = doc.split(/^### /m).slice(1);
    const bad = sections.filter((s) => !/\nFix: \S/.test(s)).map((s) => s.split('\n')[0]);
    expect(bad, 'each entry needs a "Fix:" line').toEqual([]);
  });
});
