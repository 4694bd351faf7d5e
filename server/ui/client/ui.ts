/**
 * What every page of the console shares: the page's main element, the flash line (what an action
 * did, or why it failed), the fix line of an error code (docs/errors.md, bundled), table cells.
 */
import { parseErrorCatalogue } from '../../../common/error-catalogue.js';
import { CallError } from './api.js';
import { h } from './dom.js';
// docs/errors.md, put in by the bundler (scripts/bundle.mjs alias): docs are not code to import.
import errorsMd from 'ferry-errors-md';

/** docs/errors.md, bundled: the fix line of each error code. */
const CATALOGUE = parseErrorCatalogue(errorsMd);

export function fixLine(code: string | undefined): HTMLElement | '' {
  const fix = code ? CATALOGUE[code]?.fix : undefined;
  return fix ? h('div', { class: 'fix' }, 'Fix: ', fix) : '';
}

export const main = h('main', { id: 'main', tabindex: '-1' });
export const flash = h('div', { id: 'flash', role: 'status', 'aria-live': 'polite' });

export function say(text: string, bad = false): void {
  flash.className = bad ? 'bad' : 'ok';
  flash.textContent = text;
}

export function failure(e: unknown): void {
  if (e instanceof CallError) say(`${e.error.code}: ${e.error.message}${e.error.hint ? ' - ' + e.error.hint : ''}`, true);
  else say(String(e), true);
}

export function cell(text: string | number | undefined, cls?: string): HTMLElement {
  return h('td', cls ? { class: cls } : {}, text ?? '');
}

export function nodeLink(name: string): HTMLElement {
  return h('a', { href: `#/node/${encodeURIComponent(name)}` }, name);
}
