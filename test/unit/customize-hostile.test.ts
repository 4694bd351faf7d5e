import { describe, expect, it } from 'vitest';
import { networkSettings, renderTemplate, validInterfaceName } from '../../installer/customize/plan.js';

describe('customization inputs that land in files', () => {
  it('checks interface names as Linux does', () => {
    for (const ok of ['eth0', 'enp0s31f6', 'a', 'x'.repeat(15), 'br-lan', 'eth0.100']) expect(validInterfaceName(ok), ok).toBe(true);
    for (const bad of ['', '.', '..', 'x'.repeat(16), 'eth0\nup rm -rf /', 'eth 0', 'eth\t0', 'a/b', 'a:1', 'e\r', 'e\x00', 'e"', "e'", 'e#', 'e;x', 'e=x', 'e[0]']) {
      expect(validInterfaceName(bad), JSON.stringify(bad)).toBe(false);
    }
  });
  it('refuses an interface with a newline before any file is rendered', () => {
    expect(() => networkSettings({ 'network.interface': 'eth0\n    up touch /pwned' }, [])).toThrow(/network\.interface/);
    expect(networkSettings({ 'network.interface': 'eth0' }, []).iface).toBe('eth0');
  });
  it('renders only the node\'s own values, never the prototype chain', () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      expect(() => renderTemplate(`{{ ${name} }}`, { hostname: 'h' }, '/etc/motd')).toThrow(/not set/);
    }
    expect(renderTemplate('{{ hostname }}', { hostname: 'h' }, '/etc/motd')).toBe('h');
  });
});
