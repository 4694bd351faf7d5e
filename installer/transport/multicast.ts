/**
 * The multicast transport: udpcast's `udp-receiver` piped straight into the layer sink (hash,
 * decompress, extract; no temporary copy). The server runs one udp-sender per layer and batch
 * (server/multicast/sessions.ts); this side
 *  1. checks its own interface towards the server first: udpcast finds its peers through the
 *     interface's broadcast address, so an address without one fails here with
 *     FERRY_E_MULTICAST_NO_BROADCAST (and HTTP takes over) rather than as a bare
 *     "Receiver error" later;
 *  2. joins the layer's session with its deploy token; a session that already started answers
 *     "late" and the layer comes over HTTP at once (the node does not wait for another session);
 *  3. runs udp-receiver on the session's own port base and checks the stream's header line
 *     (`FERRYMC1 SESSION DIGEST SIZE`) before a single byte reaches the sink: a stream of
 *     another session or layer is refused (FERRY_E_MULTICAST_STREAM);
 *  4. feeds the rest to the sink; the sink's size and sha256 check is the last word.
 * A receiver the sender dropped (it held the session back: udp-sender --retries-until-drop)
 * ends with FERRY_E_MULTICAST_DROPPED. Every failure here makes the dispatch (index.ts) warn
 * and apply the layer over HTTP.
 */
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { FerryError } from '../../common/errors.js';
import { interfaceFor } from '../../common/netif.js';
import { MULTICAST_ROUTES, type MulticastJoin, type MulticastSessionState } from '../../common/protocol.js';
import { spawnTool } from '../../common/run.js';
import type { LayerTransport } from './types.js';

/** Seconds without a datagram, once the transfer started, after which the receiver gives up. */
const RECEIVE_TIMEOUT_S = 15;
const MAX_HEADER = 512;
/** How often the receiver asks the server whether it was dropped. */
const POLL_MS = 2000;
/** The most received bytes held in memory ahead of the extractor. */
const QUEUE_BYTES = 64 * 1024 * 1024;

async function serverAddress(baseUrl: string): Promise<string> {
  const host = new URL(baseUrl).hostname.replace(/^\[|\]$/g, '');
  return isIP(host) ? host : (await lookup(host, { family: 4 })).address;
}

export const multicastTransport: LayerTransport = {
  kind: 'multicast',
  async deliver(ref, sink, o) {
    if (!o.client) throw new FerryError('FERRY_E_MULTICAST_UNAVAILABLE', 'the multicast transport needs the installer API', { hint: 'run the installer with --server and --token' });
    const iface = await interfaceFor(await serverAddress(o.baseUrl));
    const join = await o.client.call<MulticastJoin>('POST', MULTICAST_ROUTES.join, { layer: ref.digest }, 'the multicast session');
    if (join.state !== 'joined') {
      throw new FerryError(join.code || 'FERRY_E_MULTICAST_UNAVAILABLE', join.reason, { details: { layer: ref.digest, state: join.state }, hint: 'nothing to do: the layer comes over HTTP' });
    }
    if (join.layer !== ref.digest) {
      throw new FerryError('FERRY_E_MULTICAST_STREAM', `the server offered the session of ${join.layer} for ${ref.digest}`, { details: { asked: ref.digest, offered: join.layer }, hint: 'a server bug: report it; the layer comes over HTTP' });
    }
    o.progress?.({
      phase: 'layers',
      state: 'info',
      object: ref.digest,
      message: `joined multicast session ${join.session} (${join.address}, ports ${join.portbase}-${join.portbase + 1}) on ${iface.ifname}`,
      details: { transport: 'multicast', session: join.session, address: join.address, portbase: join.portbase, interface: iface.ifname },
    });
    const argv = [
      'udp-receiver', '--interface', iface.ifname, '--nokbd', '--portbase', String(join.portbase),
      // The session starts at the latest max-wait after its first join; then data must flow.
      '--start-timeout', String(join.maxWaitS + 15), '--receive-timeout', String(RECEIVE_TIMEOUT_S),
    ];
    const p = spawnTool(argv, { stdout: 'pipe' });
    let stderr = '';
    p.child.stderr!.on('data', (b: Buffer) => {
      stderr = (stderr + b.toString('utf8')).slice(-8192);
    });
    const onAbort = () => p.child.kill('SIGKILL');
    // The sender's "you are dropped" datagram can be lost (or this receiver too busy to read it):
    // the server knows from udp-sender's log, so ask it now and then rather than sit out the
    // receive timeout.
    let droppedByServer = false;
    const client = o.client;
    const poll = setInterval(() => {
      client
        .call<MulticastSessionState>('GET', `${MULTICAST_ROUTES.session}?layer=${encodeURIComponent(ref.digest)}`, undefined, 'the multicast session state', { baseMs: 500, maxMs: 1000, giveUpAfterMs: 1500 })
        .then((st) => {
          if (st.self === 'dropped' || st.state === 'failed') {
            droppedByServer = st.self === 'dropped';
            p.child.kill('SIGKILL');
          }
        })
        .catch(() => {
          /* the state is advice; udp-receiver's own timeouts still bound the wait */
        });
    }, POLL_MS);
    o.signal?.addEventListener('abort', onAbort);
    const exited = p.done.then(
      () => undefined,
      (e: Error) => e,
    );
    try {
      let head = Buffer.alloc(0);
      let headerOk = false;
      // udp-receiver must never wait for the extractor: a receiver blocked on its output pipe
      // stops answering the sender and is dropped (measured on a loaded 2-core machine). Its
      // output is read at once into a bounded queue in memory (not a file: nothing is staged);
      // only a full queue pauses the pipe.
      const queue: Buffer[] = [];
      let queued = 0;
      let ended = false;
      let wake: (() => void) | undefined;
      let headerFailure: FerryError | undefined;
      const out = p.child.stdout!;
      out.on('data', (raw: Buffer) => {
        let chunk = raw;
        if (!headerOk) {
          head = Buffer.concat([head, chunk]);
          const nl = head.indexOf(0x0a);
          if (nl < 0) {
            if (head.length > MAX_HEADER) {
              headerFailure = streamError(join.header, head.subarray(0, 80).toString('latin1'));
              p.child.kill('SIGKILL');
            }
            return;
          }
          const line = head.subarray(0, nl + 1).toString('latin1');
          if (line !== join.header) {
            headerFailure = streamError(join.header, line);
            p.child.kill('SIGKILL');
            return;
          }
          headerOk = true;
          chunk = head.subarray(nl + 1);
          if (!chunk.length) return;
        }
        queue.push(chunk);
        queued += chunk.length;
        if (queued > QUEUE_BYTES) out.pause();
        wake?.();
      });
      out.on('end', () => {
        ended = true;
        wake?.();
      });
      out.on('error', () => {
        ended = true;
        wake?.();
      });
      for (;;) {
        const chunk = queue.shift();
        if (chunk) {
          queued -= chunk.length;
          if (out.isPaused() && queued < QUEUE_BYTES / 2) out.resume();
          await sink.write(chunk);
          continue;
        }
        if (ended || headerFailure) break;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
      if (headerFailure) throw headerFailure;
      const failure = await exited;
      const why = stderr.replace(/\r/g, '\n');
      // Told to leave: udp-receiver was killed, so it could not say goodbye; say it in its place,
      // or udp-sender keeps the others waiting until it gives up on this receiver.
      if (droppedByServer) await sendDisconnect(await serverAddress(o.baseUrl), join.portbase, iface.address);
      if (droppedByServer || /Dropped by server/.test(why)) {
        throw new FerryError('FERRY_E_MULTICAST_DROPPED', `this receiver left the multicast session after ${sink.received} of ${ref.size} bytes: it held the session back (${droppedByServer ? 'the server told it to leave' : 'udp-sender dropped it'})`, {
          details: { layer: ref.digest, session: join.session, received: sink.received, size: ref.size },
          hint: 'nothing to do for this install (the layer comes over HTTP); a slow or lossy link to this node slows every receiver of a session',
        });
      }
      if (failure) {
        throw new FerryError('FERRY_E_MULTICAST_FAILED', `udp-receiver failed for session ${join.session}: ${lastLine(why) || failure.message.split('\n')[0]}`, {
          details: { layer: ref.digest, session: join.session, received: sink.received, size: ref.size, stderr: why.slice(-1000) },
          hint: 'the session may have started before this receiver connected, or multicast does not cross this network; the layer comes over HTTP',
        });
      }
      if (!headerOk || sink.received !== ref.size) {
        throw new FerryError('FERRY_E_MULTICAST_FAILED', `the multicast stream of session ${join.session} ended after ${sink.received} of ${ref.size} bytes`, {
          details: { layer: ref.digest, session: join.session, received: sink.received, size: ref.size, stderr: why.slice(-1000) },
          hint: 'the layer comes over HTTP',
        });
      }
    } finally {
      clearInterval(poll);
      o.signal?.removeEventListener('abort', onAbort);
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await exited;
    }
  },
};

/**
 * udpcast's CMD_DISCONNECT (opcode 4, then a reserved 16-bit word, network order), which
 * udp-receiver sends when it exits: from the receiver's port (portbase) to the sender's
 * (portbase + 1; udpcast's socklib.h RECEIVER_PORT and SENDER_PORT). udp-sender then removes this receiver at once instead of after its
 * --retries-until-drop rounds. Sent three times (UDP, and a slow link drops); a sender that no
 * longer knows this receiver ignores it. Best effort: errors are not the install's.
 */
export function disconnectDatagram(): Buffer {
  return Buffer.from([0x00, 0x04, 0x00, 0x00]);
}

async function sendDisconnect(server: string, portbase: number, localAddress: string | undefined): Promise<void> {
  const sock = createSocket({ type: 'udp4', reuseAddr: true });
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ port: portbase, address: localAddress }, () => resolve());
    });
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((r) => sock.send(disconnectDatagram(), portbase + 1, server, () => r()));
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch {
    /* udp-sender drops an unanswering receiver by itself, later */
  } finally {
    sock.close();
  }
}

function lastLine(s: string): string {
  return s.split('\n').map((l) => l.trim()).filter(Boolean).pop() ?? '';
}

function streamError(expected: string, got: string): FerryError {
  return new FerryError('FERRY_E_MULTICAST_STREAM', `the multicast stream does not start with this session's header (expected ${JSON.stringify(expected.trim())}, got ${JSON.stringify(got.trim().slice(0, 120))})`, {
    details: { expected: expected.trim(), got: got.trim().slice(0, 120) },
    hint: 'another session or layer was on this port; nothing of it was applied, and the layer comes over HTTP',
  });
}
