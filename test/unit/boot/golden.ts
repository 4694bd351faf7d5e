import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { expect } from 'vitest';

export const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'boot');

/**
 * Compare text with a golden file under test/fixtures/boot. FERRY_UPDATE_GOLDEN=1
 * rewrites the file (then review the diff); a missing file is a failure otherwise.
 */
export function expectGolden(name: string, actual: string): void {
  const file = join(FIXTURES, name);
  if (process.env.FERRY_UPDATE_GOLDEN === '1') {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  expect(existsSync(file), `golden file ${file} is missing: run with FERRY_UPDATE_GOLDEN=1 and review it`).toBe(true);
  expect(actual).toBe(readFileSync(file, 'utf8'));
}
