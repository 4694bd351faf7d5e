/**
 * The collector every layout check writes to: problems with their element path and line, and
 * attribute readers (sizes, whole numbers, adaptive sizes) that report instead of throwing.
 */
import type { Problem } from '../common/errors.js';
import { parseSize, type SizeSpec } from '../common/units.js';
import type { XmlElement } from './xml.js';
import type { AdaptiveSize, RaidLevel, Where } from './types.js';
import { controlProblem, didYouMean } from './values.js';

export const RAID_MIN_MEMBERS: Record<RaidLevel, number> = { linear: 1, raid0: 2, raid1: 2, raid4: 3, raid5: 3, raid6: 4, raid10: 2 };

export class Reader {
  problems: Problem[] = [];
  /** Attributes already refused for control characters (each is reported once). */
  private refused = new Set<string>();

  error(code: string, at: Where, message: string, hint?: string): void {
    this.problems.push({ severity: 'error', code, message, path: at.path, line: at.line, hint });
  }
  warn(code: string, at: Where, message: string, hint?: string): void {
    this.problems.push({ severity: 'warning', code, message, path: at.path, line: at.line, hint });
  }

  where(el: XmlElement, attr?: string): Where {
    return { path: attr ? `${el.path}/@${attr}` : el.path, line: el.line };
  }

  /**
   * An attribute's value, trimmed; undefined when absent or empty. Own attributes only (a
   * layout attribute named `constructor` is not Object's). A value with a control character
   * (`&#10;`, `&#9;` in the XML) is refused here, for every attribute: no layout value is
   * meant to hold one, and in a command or a file each would start a new word or line.
   */
  attr(el: XmlElement, name: string): string | undefined {
    const v = Object.hasOwn(el.attrs, name) ? el.attrs[name] : undefined;
    if (v === undefined) return undefined;
    const bad = controlProblem(v);
    if (bad) {
      const key = `${el.path}/@${name}`;
      if (!this.refused.has(key)) {
        this.refused.add(key);
        this.error('FERRY_E_LAYOUT_VALUE', this.where(el, name), `${name}=${bad}`, 'remove the control character (newlines, tabs and the like are never part of a layout value)');
      }
      return undefined;
    }
    const t = v.trim();
    return t === '' ? undefined : t;
  }

  /** Warn about attributes `el` does not have, naming the closest known one (`flag` → `flags`). */
  knownAttributes(el: XmlElement, known: readonly string[]): void {
    for (const a of Object.keys(el.attrs)) {
      if (known.includes(a)) continue;
      const near = didYouMean(a, known);
      this.warn('FERRY_W_LAYOUT_UNKNOWN_ATTR', this.where(el, a), `<${el.name}> has no attribute ${a}; it is ignored${near ? ` (did you mean ${near}?)` : ''}`,
        near ? `rename ${a} to ${near}` : `remove ${a}; <${el.name}> takes ${known.join(', ') || 'no attributes'}`);
    }
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

  /** Warn about an element that has no place here, naming the closest one that has. */
  unknownElement(c: XmlElement, where: string, allowed: readonly string[]): void {
    const near = didYouMean(c.name, allowed);
    this.warn('FERRY_W_LAYOUT_IGNORED', this.where(c), `<${c.name}> ${where} is ignored${near ? ` (did you mean <${near}>?)` : ''}`,
      near ? `rename <${c.name}> to <${near}>` : `remove it; ${where} takes ${allowed.map((a) => `<${a}>`).join(', ')}`);
  }
}
