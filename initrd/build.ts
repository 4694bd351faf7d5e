/**
 * Build the boot environment: `make initrd` → build/boot/vmlinuz and
 * build/boot/initrd-<drivers>.img (initrd.img points at the default set).
 *
 * Plan, then apply: the packages are fetched and unpacked (initrd/apt.ts), the plan's
 * inputs read from them (initrd/inputs.ts), the archive planned as data
 * (initrd/plan.ts: every path, mode, symlink target and the host file or bytes it
 * holds), then written as a cpio archive through zstd (initrd/write.ts). The same
 * inputs give the same bytes.
 */
import { existsSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { FerryError, toFerryError } from '../common/errors.js';
import { AptCache } from './apt.js';
import { busyboxApplets, elfOf, readModuleIndex, readRootfs, readTree, stageModules } from './inputs.js';
import { selectModules } from './modules.js';
import { busyboxOf, partSizes, planArchive, type PackageTree, type PartSize } from './plan.js';
import { slimPlan } from './slim.js';
import { parseDriverSet, parsePackageList, type PackageSpec } from './spec.js';
import { writeArchive } from './write.js';

export const SHELL_READY = 'FERRY-SHELL-READY';

export interface BuildOptions {
  drivers: string;
  outDir: string;
  /** The installer executable to carry (build/ferry-installer). */
  installer: string;
  cacheDir: string;
  /** The initrd/ source directory (packages.txt, drivers/, rootfs/). */
  srcDir: string;
  /** zstd level. */
  level: number;
  /** mtime of every entry (SOURCE_DATE_EPOCH). */
  epoch: number;
  /** Also point initrd.img at this build. */
  makeDefault: boolean;
  log: (line: string) => void;
}

export interface BuildResult {
  kernelVersion: string;
  vmlinuz: string;
  initrd: string;
  bytes: number;
  uncompressedBytes: number;
  entries: number;
  modules: number;
  sha256: string;
  manifest: string;
  seconds: number;
  /** Unpacked size of each part, largest first (partSizes). */
  parts: PartSize[];
}

export async function buildInitrd(o: BuildOptions): Promise<BuildResult> {
  const started = Date.now();
  const spec: PackageSpec = parsePackageList(readFileSync(join(o.srcDir, 'packages.txt'), 'utf8'));
  const driverSet = parseDriverSet(o.drivers, (n) => {
    const f = join(o.srcDir, 'drivers', `${n}.txt`);
    return existsSync(f) ? readFileSync(f, 'utf8') : undefined;
  });
  if (!existsSync(o.installer)) {
    throw new FerryError('FERRY_E_INITRD_NO_INSTALLER', `the installer executable ${o.installer} does not exist`, {
      details: { installer: o.installer },
      hint: 'build it first with `make installer` (make initrd does this), or give --installer PATH',
    });
  }

  // 1. Packages.
  const apt = new AptCache(o.cacheDir);
  const kernelPkg = await apt.kernelPackage(spec.kernel);
  const names = await apt.closure(spec.packages.map((p) => p.name), spec.exclude);
  o.log(`packages: ${names.length} (${spec.packages.length} listed, the rest their libraries), kernel ${kernelPkg}`);
  const versions = await apt.versions([...names, kernelPkg]);
  const fetched = await apt.fetch(versions);
  const kernel = fetched.find((f) => f.name === kernelPkg)!;
  const packages: PackageTree[] = fetched.filter((f) => f.name !== kernelPkg).map((p) => ({ name: p.name, files: readTree(p.dir) }));
  const bb = busyboxOf(spec, packages);
  const applets = bb ? await busyboxApplets(bb) : undefined;

  // 2. Kernel modules: the driver set's closure, indexed again by depmod for this subset.
  const kver = readdirSync(join(kernel.dir, 'lib', 'modules'))[0];
  const kmods = join(kernel.dir, 'lib', 'modules', kver);
  const sel = selectModules(readModuleIndex(kmods), driverSet);
  const stage = join(o.cacheDir, `stage-${process.pid}-${o.drivers}`);
  rmSync(stage, { recursive: true, force: true });
  try {
    const moduleFiles = await stageModules(kmods, kver, sel.paths, stage);

    // 3. The plan, then the archive.
    const plan = planArchive({
      spec,
      packages,
      installer: resolve(o.installer),
      elf: elfOf,
      busyboxApplets: applets,
      modules: { kver, files: moduleFiles },
      rootfs: readRootfs(join(o.srcDir, 'rootfs')),
      drivers: o.drivers,
      versions,
    });
    // What the environment carries twice or never reads: zero-filled, so it compresses to nothing.
    for (const l of slimPlan(plan, spec.hollow, (f) => readFileSync(f))) o.log(`slim: ${l}`);
    const w = await writeArchive(plan, {
      outDir: o.outDir,
      drivers: o.drivers,
      kver,
      vmlinuz: join(kernel.dir, 'boot', `vmlinuz-${kver}`),
      level: o.level,
      epoch: o.epoch,
      modules: sel.paths.length,
      makeDefault: o.makeDefault,
    });
    return {
      kernelVersion: kver,
      vmlinuz: w.vmlinuz,
      initrd: w.initrd,
      bytes: w.bytes,
      uncompressedBytes: w.uncompressedBytes,
      entries: plan.entries.length,
      modules: sel.paths.length,
      sha256: w.sha256,
      manifest: w.manifest,
      seconds: (Date.now() - started) / 1000,
      parts: partSizes(plan, (e) => e.data?.length ?? statSync(e.source!).size),
    };
  } finally {
    rmSync(stage, { recursive: true, force: true });
    for (const f of existsSync(o.outDir) ? readdirSync(o.outDir) : []) {
      if (f.includes(`.tmp-${process.pid}`)) unlinkSync(join(o.outDir, f));
    }
  }
}

/** "installer 83.6 MiB (61%), kernel modules 21.3 MiB (15%), lvm2 4.1 MiB …", the seven largest and the rest. */
function partsLine(parts: PartSize[], total: number): string {
  const shown = parts.slice(0, 7);
  const rest = parts.slice(7).reduce((n, p) => n + p.bytes, 0);
  const pct = (n: number) => `${Math.round((100 * n) / Math.max(1, total))}%`;
  return [...shown.map((p) => `${p.part} ${mib(p.bytes)} (${pct(p.bytes)})`), ...(rest ? [`${parts.length - 7} more ${mib(rest)} (${pct(rest)})`] : [])].join(', ');
}

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

const USAGE = 'initrd-build [--drivers virtual|generic] [--out DIR] [--installer FILE] [--cache DIR] [--level N] [--no-default]';

export async function main(argv: string[]): Promise<number> {
  const { parseArgs } = await import('node:util');
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        drivers: { type: 'string', default: 'virtual' },
        out: { type: 'string', default: 'build/boot' },
        installer: { type: 'string', default: 'build/ferry-installer' },
        cache: { type: 'string' },
        level: { type: 'string', default: '19' },
        'no-default': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (e) {
    throw new FerryError('FERRY_E_USAGE', `${(e as Error).message}\nusage: ${USAGE}`, { hint: 'see the usage line above' });
  }
  if (values.help) {
    process.stdout.write(`usage: ${USAGE}\n`);
    return 0;
  }
  const level = Number(values.level);
  if (!Number.isInteger(level) || level < 1 || level > 19) throw new FerryError('FERRY_E_USAGE', `--level ${values.level}: give a zstd level from 1 to 19\nusage: ${USAGE}`);
  const epochText = process.env.SOURCE_DATE_EPOCH ?? '0';
  if (!/^\d+$/.test(epochText)) throw new FerryError('FERRY_E_USAGE', `SOURCE_DATE_EPOCH="${epochText}" is not a number of seconds`);
  const here = dirname(new URL(import.meta.url).pathname);
  // Bundled as build/initrd-build.mjs: the sources are in ../initrd.
  const srcDir = existsSync(join(here, 'packages.txt')) ? here : join(here, '..', 'initrd');
  const r = await buildInitrd({
    drivers: String(values.drivers),
    outDir: String(values.out),
    installer: String(values.installer),
    cacheDir: String(values.cache ?? join(process.env.FERRY_CACHE || '/var/cache/ferry', 'bootenv')),
    srcDir,
    level,
    epoch: Number(epochText),
    makeDefault: !values['no-default'],
    log: (l) => process.stderr.write(`initrd: ${l}\n`),
  });
  process.stdout.write(
    [
      `kernel   ${relative(process.cwd(), r.vmlinuz)}  ${mib(statSync(r.vmlinuz).size)}  (${r.kernelVersion})`,
      `initrd   ${relative(process.cwd(), r.initrd)}  ${mib(r.bytes)} (zstd -${level}; ${mib(r.uncompressedBytes)} unpacked, ${r.entries} entries, ${r.modules} modules)`,
      `parts    ${partsLine(r.parts, r.uncompressedBytes)} (unpacked)`,
      `sha256   ${r.sha256}`,
      `manifest ${relative(process.cwd(), r.manifest)}`,
      `built in ${r.seconds.toFixed(1)} s`,
      '',
    ].join('\n'),
  );
  return 0;
}

if (process.argv[1] && /initrd-build\.mjs$|initrd\/build\.[tj]s$/.test(process.argv[1])) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e) => {
      process.stderr.write(toFerryError(e).format() + '\n');
      process.exitCode = 1;
    },
  );
}
