#!/usr/bin/env node
// A PXE firmware's DHCP conversation, for tests: run inside a network namespace as
//   node pxe-client.mjs bios|efi64|ipxe
// It broadcasts a DHCPDISCOVER like PXE firmware (or iPXE) does, collects the
// offers for a while, and, when a proxy offer carries a PXE boot menu instead of a
// file name, asks the boot server on port 4011 like the firmware would. It prints
// one JSON line: {offers: [...], bootServer?: {...}}.
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';

const kind = process.argv[2] ?? 'bios';
const clientIp = process.argv[3] ?? '0.0.0.0';
const mac = Buffer.from([0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc]);
const arch = { bios: 0, efi64: 7, ipxe: 0 }[kind];
const xid = randomBytes(4);
const uuid = randomBytes(16);

function opt(code, data) {
  const b = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return Buffer.concat([Buffer.from([code, b.length]), b]);
}

function packet(type, extra = [], ciaddr = '0.0.0.0') {
  const h = Buffer.alloc(236);
  h[0] = 1; h[1] = 1; h[2] = 6;
  xid.copy(h, 4);
  h.writeUInt16BE(0x8000, 10);
  Buffer.from(ciaddr.split('.').map(Number)).copy(h, 12);
  mac.copy(h, 28);
  const a = Buffer.alloc(2); a.writeUInt16BE(arch);
  const opts = [
    opt(53, [type]),
    opt(55, [1, 3, 6, 43, 54, 60, 66, 67, 128, 129, 130, 131, 132, 133, 134, 135, 175]),
    opt(57, [0x04, 0xec]),
    opt(93, a),
    opt(94, [1, 3, 0]),
    opt(97, Buffer.concat([Buffer.from([0]), uuid])),
    opt(60, `PXEClient:Arch:${String(arch).padStart(5, '0')}:UNDI:003016`),
  ];
  if (kind === 'ipxe') opts.push(opt(77, 'iPXE'), opt(175, [0x13, 0x01, 0x01]));
  return Buffer.concat([h, Buffer.from([99, 130, 83, 99]), ...opts, ...extra, Buffer.from([255])]);
}

function parse(b) {
  const ip = (o) => [...b.subarray(o, o + 4)].join('.');
  const cstr = (o, n) => { const s = b.subarray(o, o + n); const z = s.indexOf(0); return s.subarray(0, z < 0 ? n : z).toString('latin1'); };
  const options = {};
  for (let i = 240; i < b.length && b[i] !== 255; ) {
    if (b[i] === 0) { i++; continue; }
    options[b[i]] = b.subarray(i + 2, i + 2 + b[i + 1]);
    i += 2 + b[i + 1];
  }
  const pxe = {};
  if (options[43]) {
    const v = options[43];
    for (let i = 0; i < v.length && v[i] !== 255; ) {
      if (v[i] === 0) { i++; continue; }
      pxe[v[i]] = v.subarray(i + 2, i + 2 + v[i + 1]);
      i += 2 + v[i + 1];
    }
  }
  const menu = [];
  if (pxe[9]) for (let i = 0; i + 3 <= pxe[9].length; ) { const t = pxe[9].readUInt16BE(i); const n = pxe[9][i + 2]; menu.push({ type: t, text: pxe[9].subarray(i + 3, i + 3 + n).toString('latin1') }); i += 3 + n; }
  return {
    type: options[53]?.[0],
    xidMatches: b.subarray(4, 8).equals(xid),
    yiaddr: ip(16), siaddr: ip(20),
    sname: cstr(44, 64), file: cstr(108, 128),
    serverId: options[54] ? [...options[54]].join('.') : undefined,
    vendorClass: options[60]?.toString('latin1'),
    bootfileOption: options[67]?.toString('latin1'),
    discoveryControl: pxe[6]?.[0],
    menu,
  };
}

const sock = createSocket({ type: 'udp4', reuseAddr: true });
const offers = [];
sock.on('message', (m) => {
  const p = parse(m);
  if (p.xidMatches) offers.push(p);
});
await new Promise((r) => sock.bind(68, '0.0.0.0', r));
sock.setBroadcast(true);
sock.send(packet(1), 67, '255.255.255.255');
const deadline = Date.now() + 4000;
await new Promise((r) => { const t = setInterval(() => { if (offers.length || Date.now() > deadline) { clearInterval(t); r(); } }, 50); });
// A second or two more for other servers' offers (a site DHCP server and the proxy both answer).
const until = Date.now() + 1000;
await new Promise((r) => { const t = setInterval(() => { if (Date.now() > until) { clearInterval(t); r(); } }, 50); });
const result = { offers };
const proxy = offers.find((o) => o.vendorClass?.startsWith('PXEClient') && o.yiaddr === '0.0.0.0');
if (proxy && !proxy.file && clientIp !== '0.0.0.0') {
  // The proxy offer carries no file name: ask the boot server on port 4011 like the
  // firmware does. With a PXE menu (BIOS), choose its first item, layer 0 (PXE 2.1
  // boot server discovery); without one (UEFI's "BINL" proxy offer), a plain request.
  let extra = [];
  if (proxy.menu.length) {
    const item = Buffer.alloc(4);
    item.writeUInt16BE(proxy.menu[0].type, 0);
    extra = [opt(43, Buffer.concat([opt(71, item), Buffer.from([255])]))];
  }
  const before = offers.length;
  sock.send(packet(3, extra, clientIp), 4011, proxy.serverId ?? proxy.siaddr);
  const end = Date.now() + 4000;
  await new Promise((r) => { const t = setInterval(() => { if (offers.length > before || Date.now() > end) { clearInterval(t); r(); } }, 50); });
  result.bootServer = offers[before];
}
process.stdout.write(JSON.stringify(result) + '\n');
sock.close();
