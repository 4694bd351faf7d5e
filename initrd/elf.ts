/**
 * Just enough of ELF to find what a program needs at run time: its interpreter
 * (PT_INTERP) and its DT_NEEDED libraries. Reads through a callback so that a
 * 100 MB executable is not loaded whole. 64-bit little-endian only (amd64).
 */
export type ReadAt = (offset: number, length: number) => Buffer;

export interface ElfInfo {
  interpreter?: string;
  needed: string[];
  /** DT_RUNPATH/DT_RPATH entries, if any. */
  runpath: string[];
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const DT_RPATH = 15n;
const DT_RUNPATH = 29n;

export function isElf(head: Buffer): boolean {
  return head.length >= 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46;
}

/** undefined when the file is not a 64-bit little-endian ELF object. */
export function readElf(read: ReadAt): ElfInfo | undefined {
  const h = read(0, 64);
  if (!isElf(h) || h[4] !== 2 || h[5] !== 1) return undefined;
  const phoff = Number(h.readBigUInt64LE(32));
  const phentsize = h.readUInt16LE(54);
  const phnum = h.readUInt16LE(56);
  const ph = read(phoff, phentsize * phnum);
  const loads: { vaddr: number; offset: number; filesz: number }[] = [];
  let interp: { offset: number; size: number } | undefined;
  let dyn: { offset: number; size: number } | undefined;
  for (let i = 0; i < phnum; i++) {
    const b = i * phentsize;
    const type = ph.readUInt32LE(b);
    const offset = Number(ph.readBigUInt64LE(b + 8));
    const vaddr = Number(ph.readBigUInt64LE(b + 16));
    const filesz = Number(ph.readBigUInt64LE(b + 32));
    if (type === PT_LOAD) loads.push({ vaddr, offset, filesz });
    else if (type === PT_INTERP) interp = { offset, size: filesz };
    else if (type === PT_DYNAMIC) dyn = { offset, size: filesz };
  }
  const info: ElfInfo = { needed: [], runpath: [] };
  if (interp) info.interpreter = read(interp.offset, interp.size).toString('latin1').replace(/\0.*$/s, '');
  if (!dyn) return info;
  const d = read(dyn.offset, dyn.size);
  const needed: bigint[] = [];
  const runpath: bigint[] = [];
  let strtabAddr: number | undefined;
  for (let o = 0; o + 16 <= d.length; o += 16) {
    const tag = d.readBigInt64LE(o);
    const val = d.readBigUInt64LE(o + 8);
    if (tag === 0n) break;
    if (tag === DT_NEEDED) needed.push(val);
    else if (tag === DT_STRTAB) strtabAddr = Number(val);
    else if (tag === DT_RUNPATH || tag === DT_RPATH) runpath.push(val);
  }
  if (strtabAddr === undefined) return info;
  const seg = loads.find((l) => strtabAddr! >= l.vaddr && strtabAddr! < l.vaddr + l.filesz);
  if (!seg) return info;
  const strOff = seg.offset + (strtabAddr - seg.vaddr);
  const str = (v: bigint): string => {
    const chunk = read(strOff + Number(v), 4096);
    const end = chunk.indexOf(0);
    return chunk.toString('latin1', 0, end < 0 ? chunk.length : end);
  };
  info.needed = needed.map(str);
  info.runpath = runpath.flatMap((v) => str(v).split(':')).filter(Boolean);
  return info;
}
