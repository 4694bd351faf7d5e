/**
 * What every part of the planner shares: the layout, the seed, and the problems found so far.
 */
import type { Problem } from '../common/errors.js';
import type { Layout, Where } from './types.js';

export interface Ctx {
  layout: Layout;
  seed: string;
  problems: Problem[];
  warnings: Problem[];
}

export function err(c: Ctx, code: string, at: Where | undefined, message: string, hint?: string): void {
  c.problems.push({ severity: 'error', code, message, path: at?.path, line: at?.line, hint });
}
export function warn(c: Ctx, code: string, at: Where | undefined, message: string): void {
  c.warnings.push({ severity: 'warning', code, message, path: at?.path, line: at?.line });
}
