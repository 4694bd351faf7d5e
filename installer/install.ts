/**
 * The install, stage by stage: identify → config → disks → layers → customize → bootloader →
 * finish (installer/stages/, one module each with the same small interface). The runner reports
 * start and end of each; on failure an error event with the stage, what was being done, and for
 * a command its argv and output tail; then it stops (no retry loop, no reboot).
 */
import { FerryError, toFerryError } from '../common/errors.js';
import { log } from '../common/log.js';
import { formatEvent, throttled, type ProgressEvent, type ProgressSink } from '../common/progress.js';
import type { FinishAction, InstallResult } from '../common/protocol.js';
import { RECORD_MAX_EVENTS } from '../common/medium.js';
import { EventSender, ServerClient } from './client.js';
import { keepFailedRecord } from './medium-record.js';
import { bootloader } from './stages/bootloader.js';
import { config } from './stages/config.js';
import { customize } from './stages/customize.js';
import { disks } from './stages/disks.js';
import { finish, teardown } from './stages/finish.js';
import { identify } from './stages/identify.js';
import { layers } from './stages/layers.js';
import type { InstallContext, InstallOptions, Stage } from './stages/types.js';

export type { InstallContext, InstallOptions, Stage } from './stages/types.js';
export { disksInUse } from './stages/disks.js';

export const STAGES: Stage[] = [identify, config, disks, layers, customize, bootloader, finish];

export interface InstallOutcome {
  result: InstallResult;
  finish: FinishAction;
  /** Whether every event reached the server. */
  eventsDelivered: boolean;
}

/** What the error event carries: the stage, what was done, and a command's argv and output. */
export function errorEvent(phase: string, doing: string, e: FerryError): ProgressEvent {
  const d = e.details ?? {};
  return {
    phase,
    state: 'error',
    code: e.code,
    message: `${doing}: ${e.message}`,
    details: {
      doing,
      ...(d.argv ? { argv: d.argv, exitCode: d.exitCode, stdoutTail: d.stdoutTail, stderrTail: d.stderrTail } : {}),
      ...d,
      hint: e.hint,
    },
  };
}

export async function runInstall(opts: InstallOptions): Promise<InstallOutcome> {
  const client = new ServerClient({ server: opts.server, token: opts.token, backoff: opts.backoff });
  // A medium install has no server: events go to the console and onEvent only.
  const sender = opts.medium ? undefined : new EventSender(client, { heartbeatMs: opts.heartbeatMs });
  const say = opts.console ?? ((l: string) => process.stderr.write(l + '\n'));
  const toConsole = throttled((e) => say(formatEvent(e)), 2000);
  // A medium install keeps its events for the record written into the installed system (bounded:
  // progress events beyond twice the record's room are dropped, oldest first).
  const recorded: ProgressEvent[] | undefined = opts.medium ? [] : undefined;
  const emit: ProgressSink = (e) => {
    const ev = e.ts ? e : { ...e, ts: new Date().toISOString() };
    sender?.push(ev);
    if (recorded && ev.state !== 'heartbeat') {
      recorded.push(ev);
      if (recorded.length > 4 * RECORD_MAX_EVENTS) {
        const i = recorded.findIndex((x) => x.state === 'progress');
        if (i >= 0) recorded.splice(i, 1);
        else recorded.shift();
      }
    }
    opts.onEvent?.(ev);
    if (e.state !== 'heartbeat') toConsole(ev);
  };
  const ctx: InstallContext = { opts, client, emit: throttled(emit, 1000), doing: 'starting', mounted: false, finish: opts.finish ?? 'reboot', warnings: [], recorded, startedAt: new Date().toISOString() };
  sender?.start();
  const guard = crashGuard();
  // SIGINT/SIGTERM stop the install where it is: what was mounted is unmounted and the result is
  // `aborted`. A second signal of the same kind has its default effect (the handler is once()).
  let onSignal: (sig: NodeJS.Signals) => void = () => {};
  const interrupted = new Promise<never>((_, reject) => {
    onSignal = (sig) => reject(new FerryError('FERRY_E_INSTALL_ABORTED', `the install was interrupted by ${sig}`, { details: { signal: sig }, hint: 'arm the node again (ferry deploy NODE) and install again; the disks hold a partial install' }));
  });
  interrupted.catch(() => {});
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let result: InstallResult = { status: 'success' };
  for (const stage of STAGES) {
    if (sender) sender.phase = stage.name;
    const t0 = Date.now();
    emit({ phase: stage.name, state: 'start' });
    try {
      await Promise.race([stage.run(ctx), guard.crashed, interrupted]);
      emit({ phase: stage.name, state: 'end', message: `${((Date.now() - t0) / 1000).toFixed(1)} s` });
    } catch (err) {
      const e = toFerryError(err);
      log.error('install failed', { phase: stage.name, doing: ctx.doing, code: e.code, message: e.message });
      emit(errorEvent(stage.name, ctx.doing, e));
      result = { status: e.code === 'FERRY_E_INSTALL_ABORTED' ? 'aborted' : 'failed', error: { code: e.code, message: e.message, details: { ...e.details, doing: ctx.doing, hint: e.hint }, phase: stage.name } };
      try {
        await teardown(ctx);
      } catch (te) {
        emit({ phase: stage.name, state: 'warning', message: `could not unmount the target after the failure: ${(te as Error).message}` });
      }
      break;
    }
  }
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  if (result.status !== 'success' && ctx.medium && recorded) {
    // No server saw this install: the record is posted now, or kept on the medium, or said here.
    for (const l of await keepFailedRecord(ctx.medium, recorded, ctx.startedAt ?? new Date().toISOString(), result, { mediumDevice: opts.mediumDevice })) say(l);
  }
  const delivered = sender ? await sender.close() : true;
  if (sender) {
    try {
      await client.postResult(result);
    } catch (e) {
      say(`could not report the result to the server: ${(e as Error).message}`);
    }
  }
  guard.release();
  const fin = result.status === 'success' ? (opts.onNode ? ctx.finish : 'stay') : 'stay';
  return { result, finish: fin, eventsDelivered: delivered };
}


/**
 * An error thrown where no caller can catch it (an event handler, a timer: a library's socket
 * handler asserting, as undici 7 did) would kill the installer with no result sent and leave the
 * deployment "running" until its heartbeat times out. While the stages run, such an error fails
 * the current stage instead: teardown runs and the failure is reported like any other.
 */
function crashGuard(): { crashed: Promise<never>; release(): void } {
  let fail!: (e: unknown) => void;
  const crashed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  crashed.catch(() => {}); // handled by the stage loop's race; never an unhandled rejection itself
  const onError = (e: unknown): void => {
    log.error('uncaught error in the installer', { message: e instanceof Error ? e.message : String(e) });
    fail(new FerryError('FERRY_E_INTERNAL', `uncaught error in the installer: ${e instanceof Error ? e.message : String(e)}`, {
      details: { stack: e instanceof Error ? e.stack?.split('\n').slice(0, 8).join('\n') : undefined },
      hint: 'a bug in the installer or a library it uses: report it with this message; the disks may be partly written',
      cause: e,
    }));
  };
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onError);
  return {
    crashed,
    release() {
      process.off('uncaughtException', onError);
      process.off('unhandledRejection', onError);
    },
  };
}
