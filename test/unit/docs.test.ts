/**
 * The docs check themselves: every `ferry …` command, subcommand and option, and every
 * repository path, named in README.md, docs/*.md and in the hints of Ferry's errors, exists.
 *
 * Commands come from the CLI's own table (COMMANDS in cli/main.ts); subcommands and options
 * from the declarations in each command's module (the `case 'sub':` of its dispatch and the
 * `name: { type: … }` entries it hands to parse), plus the options every command takes.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { COMMANDS } from '../../cli/main.js';
import { COMMON_OPTIONS } from '../../common/cli.js';

const ROOT = join(import.meta.dirname, '..', '..');

interface CommandSpec {
  subcommands: Set<string>;
  options: Set<string>;
  hasSubcommands: boolean;
}

/** The module a COMMANDS entry loads, read from its `load: () => import('./x.js')`. */
function commandModules(): Map<string, string> {
  const main = readFileSync(join(ROOT, 'cli/main.ts'), 'utf8');
  const out = new Map<string, string>();
  for (const name of Object.keys(COMMANDS)) {
    const m = new RegExp(`\\b'?${name}'?:\\s*\\{[^\\n]*import\\('(\\./[^']+)'\\)`).exec(main);
    if (!m) throw new Error(`cli/main.ts: cannot find the module of command ${name}`);
    out.set(name, join(ROOT, 'cli', m[1].replace(/\.js$/, '.ts')));
  }
  return out;
}

/** A module and the command modules it delegates to (cli/layout.ts → installer/commands/layout.ts). */
function withDelegates(file: string, seen = new Set<string>()): string[] {
  if (seen.has(file)) return [];
  seen.add(file);
  const text = readFileSync(file, 'utf8');
  const out = [file];
  for (const m of text.matchAll(/from '(\.[^']+)'|import\('(\.[^']+)'\)/g)) {
    const target = resolve(dirname(file), (m[1] ?? m[2]).replace(/\.js$/, '.ts'));
    if (/\/(cli|installer\/commands)\/[^/]+\.ts$/.test(target) && existsSync(target)) out.push(...withDelegates(target, seen));
  }
  return out;
}

export function specOf(sources: string[]): CommandSpec {
  const spec: CommandSpec = { subcommands: new Set(), options: new Set(Object.keys(COMMON_OPTIONS)), hasSubcommands: false };
  for (const text of sources) {
    if (/parseSubcommand\(|switch \(sub\)/.test(text)) spec.hasSubcommands = true;
    for (const m of text.matchAll(/case '([a-z][a-z0-9-]*)':/g)) spec.subcommands.add(m[1]);
    for (const m of text.matchAll(/(?:^|[\s{,])'?([a-z][a-z0-9-]*)'?:\s*\{\s*type:\s*'(?:string|boolean)'/gm)) spec.options.add(m[1]);
  }
  return spec;
}

function cliSpecs(): Map<string, CommandSpec> {
  const specs = new Map<string, CommandSpec>();
  for (const [name, file] of commandModules()) specs.set(name, specOf(withDelegates(file).map((f) => readFileSync(f, 'utf8'))));
  return specs;
}

/** Options of ferry-installer's commands and of the boot environment's builder, which the docs may name on their own. */
function installerOptions(): Set<string> {
  const dir = join(ROOT, 'installer/commands');
  const files = [...readdirSync(dir).filter((f) => f.endsWith('.ts')).map((f) => join(dir, f)), join(ROOT, 'initrd/build.ts')];
  return specOf(files.map((f) => readFileSync(f, 'utf8'))).options;
}

/** Options named on their own in a code span (`--set KEY=VALUE`). */
export function standaloneOptions(text: string): string[] {
  return [...text.matchAll(/`--([a-z][a-z0-9-]*)[^`]*`/g)].map((m) => m[1]);
}

export interface Finding {
  where: string;
  text: string;
  problem: string;
}

/** `ferry …` invocations in a text: from `ferry` to the end of the code span, line or clause. */
export function ferryInvocations(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?<![\w/.-])ferry (?=[a-z])([^`\n)'"]*)/g)) out.push(m[1]);
  return out;
}

export function checkInvocation(inv: string, specs: Map<string, CommandSpec>): string[] {
  const problems: string[] = [];
  const words = inv.trim().split(/\s+/);
  const name = words[0];
  // "ferry COMMAND --help" style prose and a bare word like "ferry itself" are not commands.
  if (!/^[a-z][a-z-]*$/.test(name)) return problems;
  const spec = specs.get(name);
  if (!spec) {
    problems.push(`ferry ${name}: no such command`);
    return problems;
  }
  const sub = words[1];
  // "ferry image build/capture" names two subcommands at once.
  if (spec.hasSubcommands && sub && /^[a-z][a-z0-9-]*(\/[a-z][a-z0-9-]*)*$/.test(sub)) {
    for (const s of sub.split('/')) if (!spec.subcommands.has(s)) problems.push(`ferry ${name} ${s}: no such subcommand`);
  }
  for (const m of inv.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)) {
    if (!spec.options.has(m[1])) problems.push(`ferry ${name}: no option --${m[1]}`);
  }
  return problems;
}

const PATH_ROOTS = ['layouts', 'scripts', 'docs', 'test', 'initrd', 'installer', 'server', 'cli', 'common', 'layout', 'layers', 'bin'];

/** Repository-relative paths named in a text (not absolute paths, URLs or DATA/… on the server). */
export function repoPaths(text: string): string[] {
  const re = new RegExp(`(?<![\\w/.~$-])((?:${PATH_ROOTS.join('|')})/[\\w./*-]*)`, 'g');
  const out: string[] = [];
  for (const m of text.matchAll(re)) {
    const p = m[1].replace(/[.,:;]+$/, '');
    // Placeholders (layouts/NAME.xml, test/unit/X.test.ts) and globs name no one file.
    if (p.split('/').some((seg) => /^[A-Z][A-Z0-9_]*(\.|$)/.test(seg) || seg.includes('*'))) continue;
    out.push(p);
  }
  return out;
}

function codeFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    if (e === 'node_modules') continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...codeFiles(p));
    else if (e.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** The string literals of every `hint:` in the code. */
export function hintsOf(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(/hint:([^\n]*)/g)) {
    for (const s of m[1].matchAll(/'((?:\\.|[^'\\])*)'|`((?:\\.|[^`\\])*)`|"((?:\\.|[^"\\])*)"/g)) {
      out.push((s[1] ?? s[2] ?? s[3]).replace(/\$\{[^}]*\}/g, 'X').replace(/\\'/g, "'"));
    }
  }
  return out;
}

function texts(): { where: string; text: string }[] {
  const out = [{ where: 'README.md', text: readFileSync(join(ROOT, 'README.md'), 'utf8') }];
  for (const f of readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md'))) out.push({ where: `docs/${f}`, text: readFileSync(join(ROOT, 'docs', f), 'utf8') });
  for (const d of ['cli', 'common', 'installer', 'layout', 'layers', 'server', 'initrd']) {
    for (const f of codeFiles(join(ROOT, d))) {
      const hints = hintsOf(readFileSync(f, 'utf8'));
      if (hints.length) out.push({ where: `hints in ${relative(ROOT, f)}`, text: hints.join('\n') });
    }
  }
  return out;
}

export function findProblems(items: { where: string; text: string }[], specs: Map<string, CommandSpec>, exists: (p: string) => boolean, extraOptions: Set<string> = new Set()): Finding[] {
  const found: Finding[] = [];
  const anyOption = new Set([...extraOptions, ...[...specs.values()].flatMap((s) => [...s.options])]);
  for (const { where, text } of items) {
    for (const o of standaloneOptions(text)) if (!anyOption.has(o)) found.push({ where, text: `--${o}`, problem: `no command has an option --${o}` });
    for (const inv of ferryInvocations(text)) for (const problem of checkInvocation(inv, specs)) found.push({ where, text: `ferry ${inv.trim()}`, problem });
    for (const p of repoPaths(text)) if (!exists(p)) found.push({ where, text: p, problem: `${p} does not exist in the repository` });
  }
  return found;
}

describe('docs name only what exists', () => {
  const specs = cliSpecs();
  const exists = (p: string) => existsSync(join(ROOT, p));

  it('reads the command table', () => {
    expect([...specs.keys()]).toEqual(expect.arrayContaining(['install', 'layout', 'image', 'node', 'serve']));
    expect([...specs.get('layout')!.subcommands]).toEqual(expect.arrayContaining(['validate', 'plan', 'apply', 'teardown', 'capture']));
    expect([...specs.get('image')!.options]).toEqual(expect.arrayContaining(['dir', 'tar', 'data', 'json']));
    expect(specs.get('deploy')!.hasSubcommands).toBe(false);
  });

  it('fails on a synthetic text naming what does not exist', () => {
    const text = [
      'Run `ferry image build NAME` or `ferry image build/teleport`, then',
      '`ferry node set web1 --input a=b`, `ferry frobnicate`, and `ferry layout plan layouts/simple.xml --disk /dev/vda`.',
      'Give the inputs with `--input KEY=VALUE` or `--set KEY=VALUE`.',
      'Also see scripts/nope.sh and docs/missing.md, but not /var/lib/ferry/layouts/x.xml, DATA/blobs/x or layouts/NAME.xml.',
      'These exist: `ferry layout plan layouts/uefi-gpt.xml --disk-size 8G --json`, docs/errors.md.',
    ].join('\n');
    const problems = findProblems([{ where: 'synthetic', text }], specs, exists).map((f) => f.problem);
    expect(problems.sort()).toEqual([
      'docs/missing.md does not exist in the repository',
      'ferry frobnicate: no such command',
      'ferry image build: no such subcommand',
      'ferry image build: no such subcommand',
      'ferry image teleport: no such subcommand',
      'ferry node: no option --input',
      'layouts/simple.xml does not exist in the repository',
      'no command has an option --input',
      'scripts/nope.sh does not exist in the repository',
    ].sort());
  });

  it('finds hints in code', () => {
    const src = `throw new FerryError('X', 'm', { hint: 'check the plan (ferry layout plan --bogus), then see docs/none.md' });\n  hint: a ? \`run ferry image \${x} --nope\` : "ferry nodes ls",`;
    const problems = findProblems([{ where: 'code', text: hintsOf(src).join('\n') }], specs, exists).map((f) => f.problem);
    expect(problems.sort()).toEqual(['docs/none.md does not exist in the repository', 'ferry image: no option --nope', 'ferry layout: no option --bogus', 'ferry nodes: no such command'].sort());
  });

  it('README.md, docs/*.md and error hints name only existing commands, options and paths', () => {
    const all = texts();
    // The check reads enough to mean something: the docs name many commands and paths.
    const invocations = all.flatMap((t) => ferryInvocations(t.text));
    const paths = all.flatMap((t) => repoPaths(t.text));
    expect(invocations.length).toBeGreaterThan(100);
    expect(paths.length).toBeGreaterThan(60);
    const problems = findProblems(all, specs, exists, installerOptions());
    expect(problems.map((f) => `${f.where}: ${f.problem}  [${f.text.slice(0, 100)}]`)).toEqual([]);
  });
});
