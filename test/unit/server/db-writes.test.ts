import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..', '..');

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? tsFiles(p) : e.endsWith('.ts') ? [p] : [];
  });
}

describe('database writes', () => {
  it('go through DataDir.write (BEGIN IMMEDIATE), so concurrent ferry commands wait instead of failing', () => {
    // A deferred transaction that reads, then writes, fails with "database is locked" when
    // another process wrote in between; test/integration/server/cli.test.ts runs commands at once.
    const allowed = new Set(['server/context.ts', 'server/db/index.ts']);
    const offenders = ['cli', 'server', 'common', 'installer']
      .flatMap((d) => tsFiles(join(ROOT, d)))
      .map((f) => ({ f: relative(ROOT, f), text: readFileSync(f, 'utf8') }))
      .filter(({ f, text }) => !allowed.has(f) && /\.transaction\(/.test(text))
      .map(({ f }) => f);
    expect(offenders).toEqual([]);
  });
});
