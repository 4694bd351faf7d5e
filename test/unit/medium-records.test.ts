/** The records area of a restore medium (common/medium-records.ts) and when a medium is written (installer/medium-record.ts): pure. */
import { describe, expect, it } from 'vitest';
import { nextRecordSlot, recordSlotBytes, type RecordArea } from '../../common/medium-records.js';
import { decodeCheckedSlot, RECORD_SLOT_BYTES, RECORD_SLOT_FORMAT, type InstallRecord } from '../../common/medium.js';
import { mediumWritable } from '../../installer/medium-record.js';

const rec = (o: Partial<InstallRecord> = {}): InstallRecord => ({
  format: 'ferry-install-record/1', id: '00000000-0000-4000-8000-000000000001', medium: 'M', node: 'n1',
  image: { name: 'img', version: 1, digest: 'sha256:' + 'a'.repeat(64) }, layout: { xml: '<config/>'.repeat(50), digest: 'sha256:' + 'b'.repeat(64) },
  inputs: { hostname: 'n1' }, status: 'failed', error: { code: 'FERRY_E_MEDIUM_LAYER_BAD', message: 'layer 1 of 1 …', phase: 'config' },
  startedAt: '2026-01-01T00:00:00.000Z', endedAt: '2026-01-01T00:01:00.000Z', events: [], ...o,
});

describe('records area', () => {
  it('a record fits one slot: the layout XML left out, then events dropped, errors kept', () => {
    const events = Array.from({ length: 3000 }, (_, i) => ({ phase: 'layers', state: 'progress', message: `step ${i} ${'x'.repeat(100)}` }));
    events.push({ phase: 'config', state: 'error', message: 'the refusal', code: 'FERRY_E_MEDIUM_LAYER_BAD' } as never);
    const b = recordSlotBytes(rec({ events }), 7);
    expect(b.length).toBe(RECORD_SLOT_BYTES);
    const d = decodeCheckedSlot<InstallRecord>(RECORD_SLOT_FORMAT, b);
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    expect(d.generation).toBe(7);
    expect(d.value.layout).toEqual({ xml: '', digest: 'sha256:' + 'b'.repeat(64) });
    expect(d.value.events.length).toBeLessThan(events.length);
    expect(d.value.events.some((e) => e.state === 'error' && e.code === 'FERRY_E_MEDIUM_LAYER_BAD')).toBe(true);
    // The newest progress events are the ones kept.
    expect(d.value.events.filter((e) => e.state === 'progress').at(-1)?.message).toContain('step 2999');
    expect(d.value.error?.code).toBe('FERRY_E_MEDIUM_LAYER_BAD');
  });

  it('the next record goes into a blank or damaged slot, else over the oldest', () => {
    const area = (slots: [number, number][], n = 4): RecordArea => ({ offset: 0, size: n * RECORD_SLOT_BYTES, damaged: [], records: slots.map(([slot, seq]) => ({ slot, seq, record: rec() })) });
    expect(nextRecordSlot(area([]))).toEqual({ slot: 0, seq: 1 });
    expect(nextRecordSlot(area([[0, 1], [1, 2]]))).toEqual({ slot: 2, seq: 3 });
    expect(nextRecordSlot(area([[0, 5], [2, 6]]))).toEqual({ slot: 1, seq: 7 });
    expect(nextRecordSlot(area([[0, 5], [1, 9], [2, 3], [3, 4]]))).toEqual({ slot: 2, seq: 10 });
  });

  it('never writes a CD', () => {
    expect(mediumWritable('/dev/sr0')).toMatchObject({ ok: false, cd: true });
    expect(mediumWritable('/tmp/medium.iso')).toEqual({ ok: true });
  });
});
