/**
 * Ferry's error type. Every error an operator can meet carries a stable code
 * (listed with its fix in docs/errors.md), the data that explains it, and a
 * message naming the input, the value, the rule and the fix.
 *
 * Codes are plain string literals `FERRY_E_…` written where the error is thrown;
 * test/unit/errors-catalogue.test.ts scans the sources for them and fails when
 * the code and docs/errors.md drift apart.
 */
export type ErrorDetails = Record<string, unknown>;

export interface FerryErrorOptions {
  /** Data that explains the error: device names, byte counts, paths… */
  details?: ErrorDetails;
  /** What the operator should do about it. */
  hint?: string;
  cause?: unknown;
}

export class FerryError extends Error {
  readonly code: string;
  readonly details: ErrorDetails;
  readonly hint?: string;

  constructor(code: string, message: string, opts: FerryErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    if (!/^FERRY_E_[A-Z0-9_]+$/.test(code)) throw new Error(`invalid Ferry error code ${code}`);
    this.name = 'FerryError';
    this.code = code;
    this.details = opts.details ?? {};
    this.hint = opts.hint;
  }

  toJSON(): { code: string; message: string; hint?: string; details: ErrorDetails } {
    return { code: this.code, message: this.message, hint: this.hint, details: this.details };
  }

  /** One operator-facing text: code, message, then the fix. */
  format(): string {
    let s = `${this.code}: ${this.message}`;
    if (this.hint) s += `\n  fix: ${this.hint}`;
    return s;
  }
}

export function isFerryError(e: unknown, code?: string): e is FerryError {
  return e instanceof FerryError && (code === undefined || e.code === code);
}

/** Wrap anything thrown into a FerryError, keeping Ferry's own errors as they are. */
export function toFerryError(e: unknown, code = 'FERRY_E_INTERNAL'): FerryError {
  if (e instanceof FerryError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new FerryError(code, msg, { cause: e });
}

/** One problem found by a validator; validators return all of them at once. */
export interface Problem {
  severity: 'error' | 'warning';
  code: string;
  message: string;
  /** Where: an XML element path (`/config/disk[1]/part[2]`), or a JSON path (`$.nodes[0].mac`). */
  path?: string;
  /** 1-based line in the input file, when known. */
  line?: number;
  hint?: string;
}

export function formatProblem(p: Problem, file?: string): string {
  const where = [file, p.line !== undefined ? `line ${p.line}` : undefined, p.path].filter(Boolean).join(': ');
  let s = `${p.severity}: ${p.code}: ${where ? where + ': ' : ''}${p.message}`;
  if (p.hint) s += `\n  fix: ${p.hint}`;
  return s;
}

/** Thrown when validation found at least one error; carries every problem. */
export class ValidationError extends FerryError {
  readonly problems: Problem[];
  constructor(code: string, what: string, problems: Problem[], file?: string) {
    const errors = problems.filter((p) => p.severity === 'error');
    super(code, `${what}: ${errors.length} problem(s):\n` + errors.map((p) => '  ' + formatProblem(p, file)).join('\n'), {
      details: { problems, file },
      hint: 'correct every problem listed, then run the command again',
    });
    this.problems = problems;
  }
}
