/**
 * The direction of the code's dependencies (docs/architecture.md, "Where things live"):
 *
 *   cli ──> server | installer ──> shared packages (layout/, layers/) ──> common
 *
 * Every relative import (static, `export … from`, `import type`, dynamic `import()`, `require()`)
 * of every .ts file in the areas below must point into an area its own area may use. Test
 * files and scripts/ are not checked; nothing checked may import them either.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');

/** Which areas each area may import (besides packages and node: built-ins). */
const MAY_IMPORT: Record<string, string[]> = {
  // Shared by all: imports nothing of the project.
  common: ['common'],
  // The shared packages: only common. layout/ and layers/ do not import each other.
  layout: ['layout', 'common'],
  layers: ['layers', 'common'],
  // Neither side imports the other, nor cli/.
  installer: ['installer', 'layout', 'layers', 'common'],
  server: ['server', 'layout', 'layers', 'common'],
  // The boot environment's builder packs the installer binary as a file; in code it uses common only.
  initrd: ['initrd', 'common'],
  // Wiring only: may use everything below it.
  cli: ['cli', 'server', 'installer', 'layout', 'layers', 'common'],
};

function tsFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) return e === 'node_modules' ? [] : tsFiles(p);
    return e.endsWith('.ts') && !/\.test\.ts$/.test(e) ? [p] : [];
  });
}

/** Every module specifier a file names. Comments are removed first so examples in them do not count. */
export function specifiers(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
  const out: string[] = [];
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[^'"`;]*?\sfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) out.push(m[1]);
  return out;
}

/** The repository path a relative specifier names (`.js` as written for ESM → the `.ts` source). */
function target(from: string, spec: string): string {
  const abs = resolve(dirname(from), spec);
  for (const cand of [abs.replace(/\.js$/, '.ts'), abs.replace(/\.js$/, '.d.ts'), abs + '.ts', join(abs, 'index.ts'), abs]) {
    if (existsSync(cand) && statSync(cand).isFile()) return relative(ROOT, cand);
  }
  return relative(ROOT, abs.replace(/\.js$/, '.ts'));
}

const areaOf = (p: string) => (p.startsWith('..') ? '(outside the repository)' : p.split(sep)[0]);

function edges(): { file: string; to: string }[] {
  const out: { file: string; to: string }[] = [];
  for (const area of Object.keys(MAY_IMPORT)) {
    for (const f of tsFiles(join(ROOT, area))) {
      for (const spec of specifiers(readFileSync(f, 'utf8'))) {
        if (!spec.startsWith('.')) continue;
        out.push({ file: relative(ROOT, f), to: target(f, spec) });
      }
    }
  }
  return out;
}

describe('import edges', () => {
  const all = edges();
  const against = all.filter(({ file, to }) => !MAY_IMPORT[areaOf(file)].includes(areaOf(to))).map(({ file, to }) => `${file} -> ${to}`);

  it('finds the imports it checks', () => {
    // Guards the reader itself: a pattern that stopped matching would make the rule pass vacuously.
    expect(all.length).toBeGreaterThan(200);
    expect(all).toContainEqual({ file: 'cli/main.ts', to: 'common/errors.ts' });
    expect(specifiers(`import type { A } from './a.js';\nexport { b } from "../b.js";\nconst c = await import('./c.js');\n// import { d } from './d.js';\nimport './e.js';`)).toEqual(['./a.js', '../b.js', './e.js', './c.js']);
  });

  it('run only in the direction cli -> server | installer -> layout/, layers/ -> common', () => {
    const offending = against;
    expect(offending, `imports against the direction (file -> import):\n${offending.join('\n')}`).toEqual([]);
  });
});
