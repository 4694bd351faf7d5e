/**
 * The collector every layout check writes to: problems with their element path and line, and
 * attribute readers (sizes, whole numbers, adaptive sizes) that report instead of throwing.
 */
import type { Problem } from '../common/errors.js';
import { parseSize, type SizeSpec } from '../common/units.js';
import type { XmlElement } from './xml.js';
import type { AdaptiveSize, RaidLevel, Where } from './types.js';

export const RAID_MIN_MEMBERS: Record<RaidLevel, number> = { linear: 1, raid0: 2, raid1: 2, raid4: 3, raid5: 3, raid6: 4, raid10: 2 };

export class Reader {
  problems: Problem[] = [];

  error(code: string, at: Where, message: string, hint?: string): void {
    this.problems.push({ severity: 'error', code, message, path: at.path, line: at.line, hint });
  }
  warn(code: string, at: Where, message: string, hint?: string): void {
    this.problems.push({ severity: 'warning', code, message, path: at.path, line: at.line, hint });
  }

  where(el: XmlElement, attr?: string): Where {
    return { path: attr ? `${el.path}/@${attr}` : el.path, line: el.line };
  }

  /** An attribute's value, trimmed; undefined when absent or empty. */
  attr(el: XmlElement, name: string): string | undefined {
    const v = el.attrs[name];
    if (v === undefined) return undefined;
    const t = v.trim();
    return t === '' ? undefined : t;
  }

  required(el: XmlElement, name: string): string | undefined {
    const v = this.attr(el, name);
    if (v === undefined) this.error('FERRY_E_LAYOUT_ATTR', this.where(el), `<${el.name}> needs the attribute ${name}`, `add ${name}="…" to this <${el.name}>`);
    return v;
  }

  size(el: XmlElement, name: string, unit: string, opts: { fill: boolean }): SizeSpec | undefined {
    const v = this.attr(el, name);
    if (v === undefined) return undefined;
    const at = this.where(el, name);
    if (/^-/.test(v)) {
      this.error('FERRY_E_LAYOUT_SIZE', at, `${name}="${v}" is negative`, 'sizes are zero or more');
      return undefined;
    }
    let spec: SizeSpec;
    try {
      spec = parseSize(v, unit);
    } catch (e) {
      this.error('FERRY_E_LAYOUT_SIZE', at, `${name}="${v}": ${(e as Error).message}`, (e as { hint?: string }).hint);
      return undefined;
    }
    if (spec.kind === 'fill' && !opts.fill) {
      this.error('FERRY_E_LAYOUT_SIZE', at, `${name}="*" is only allowed in size`, `give ${name} an absolute size or a percentage`);
      return undefined;
    }
    return spec;
  }

  int(el: XmlElement, name: string, opts: { min?: number } = {}): number | undefined {
    const v = this.attr(el, name);
    if (v === undefined) return undefined;
    if (!/^[0-9]+$/.test(v) || (opts.min !== undefined && Number(v) < opts.min)) {
      this.error('FERRY_E_LAYOUT_ATTR', this.where(el, name), `${name}="${v}" is not a whole number${opts.min !== undefined ? ` of at least ${opts.min}` : ''}`);
      return undefined;
    }
    return Number(v);
  }

  adaptive(el: XmlElement, unit: string): AdaptiveSize | undefined {
    const text = this.required(el, 'size');
    if (text === undefined) return undefined;
    const size = this.size(el, 'size', unit, { fill: true });
    const min = this.size(el, 'min_size', unit, { fill: false });
    const max = this.size(el, 'max_size', unit, { fill: false });
    let weight: number | undefined;
    const w = this.attr(el, 'weight');
    if (w !== undefined) {
      if (!/^[0-9]+(\.[0-9]+)?$/.test(w) || Number(w) <= 0) {
        this.error('FERRY_E_LAYOUT_ATTR', this.where(el, 'weight'), `weight="${w}" must be a positive number`);
      } else weight = Number(w);
    }
    if (!size) return undefined;
    if (min && max && min.kind === 'bytes' && max.kind === 'bytes' && min.bytes > max.bytes) {
      this.error('FERRY_E_LAYOUT_SIZE', this.where(el, 'min_size'), `min_size (${min.bytes} bytes) is larger than max_size (${max.bytes} bytes)`);
    }
    return { size, text, min, max, weight };
  }

  unknownChildren(el: XmlElement, allowed: string[]): void {
    for (const c of el.children) {
      if (!allowed.includes(c.name)) this.warn('FERRY_W_LAYOUT_IGNORED', this.where(c), `<${c.name}> is not part of a layout here and is ignored`);
    }
  }
}
