/**
 * The multicast pace rule (server/multicast/pace.ts): udp-sender's Timeout reports parsed, and
 * who is told to leave: the receiver late again and again while the others are ready, not one
 * late once, and nobody when most are late at once. Also the disconnect datagram the installer
 * sends for a receiver told to leave (udpcast's CMD_DISCONNECT).
 */
import { describe, expect, it } from 'vitest';
import { parseTimeoutLine, PaceWatch } from '../../server/multicast/pace.js';
import { disconnectDatagram } from '../../installer/transport/multicast.js';

describe('parseTimeoutLine', () => {
  it('reads udp-sender\'s report (as the udpcast 20120424 of Debian 12 prints it)', () => {
    expect(parseTimeoutLine('Timeout notAnswered=[2] notReady=[2] nrAns=3 nrRead=3 nrPart=4 avg=10398')).toEqual({ notAnswered: [2], notReady: [2], participants: 4 });
    expect(parseTimeoutLine('Timeout notAnswered=[] notReady=[0,3] nrAns=4 nrRead=2 nrPart=4 avg=5261')).toEqual({ notAnswered: [], notReady: [0, 3], participants: 4 });
  });
  it('ignores other lines', () => {
    expect(parseTimeoutLine('bytes=  4 402 944  re-xmits=0000000 (  0.0%) slice=0112 -   0')).toBeUndefined();
    expect(parseTimeoutLine('Dropping client #2 because of timeout')).toBeUndefined();
    expect(parseTimeoutLine('Timeout notAnswered=[x] notReady=[2] nrAns=3 nrRead=3 nrPart=4')).toBeUndefined();
  });
});

describe('PaceWatch', () => {
  const r = (notReady: number[], participants = 4) => ({ notAnswered: notReady, notReady, participants });
  it('tells the receiver late in 3 reports within 20 s to leave, once', () => {
    const w = new PaceWatch({ windowMs: 20_000, minHits: 3 });
    expect(w.report(r([2]), 0)).toEqual([]);
    expect(w.report(r([2]), 1000)).toEqual([]);
    expect(w.report(r([2]), 2000)).toEqual([2]);
    expect(w.report(r([2]), 3000)).toEqual([]);
  });
  it('forgets reports older than the window', () => {
    const w = new PaceWatch({ windowMs: 20_000, minHits: 3 });
    w.report(r([1]), 0);
    w.report(r([1]), 1000);
    expect(w.report(r([1]), 25_000)).toEqual([]);
    expect(w.report(r([1]), 26_000)).toEqual([]);
    expect(w.report(r([1]), 27_000)).toEqual([1]);
  });
  it('singles nobody out when half or more are late at once (a busy machine, the server\'s link)', () => {
    const w = new PaceWatch({ windowMs: 20_000, minHits: 2 });
    for (let i = 0; i < 10; i++) expect(w.report(r([0, 1]), i * 100)).toEqual([]);
    expect(w.report(r([0, 1, 2, 3]), 2000)).toEqual([]);
  });
  it('of two receivers, or alone, never: the slower of two is no outlier', () => {
    const w = new PaceWatch({ windowMs: 20_000, minHits: 2 });
    for (let i = 0; i < 10; i++) expect(w.report(r([1], 2), i * 10)).toEqual([]);
    const lone = new PaceWatch({ windowMs: 20_000, minHits: 1 });
    expect(lone.report(r([0], 1), 0)).toEqual([]);
    const three = new PaceWatch({ windowMs: 20_000, minHits: 2 });
    three.report(r([2], 3), 0);
    expect(three.report(r([2], 3), 10)).toEqual([2]);
  });
  it('a receiver that left is counted afresh if its number comes back', () => {
    const w = new PaceWatch({ windowMs: 20_000, minHits: 2 });
    w.report(r([3]), 0);
    w.gone(3);
    expect(w.report(r([3]), 10)).toEqual([]);
    expect(w.report(r([3]), 20)).toEqual([3]);
  });
});

describe('disconnectDatagram', () => {
  it('is CMD_DISCONNECT (opcode 4 in udpc-protoc.h\'s enum) and a reserved word, network order', () => {
    expect([...disconnectDatagram()]).toEqual([0, 4, 0, 0]);
  });
});
