/**
 * The live event stream (server-sent events) behind `ferry monitor`. A slow client
 * never holds the server back: when its socket buffer passes a bound it is dropped
 * (it reconnects and gets a fresh snapshot).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

const MAX_BUFFERED = 4 << 20;

export class EventHub {
  private clients = new Set<ServerResponse>();
  private timer: NodeJS.Timeout;
  private seq = 0;
  /** Told of every message published (the server's log of deployment state changes). */
  tap?: (type: string, data: unknown) => void;

  constructor(heartbeatMs = 15_000) {
    this.timer = setInterval(() => this.broadcastRaw(': heartbeat\n\n'), heartbeatMs);
    this.timer.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  attach(req: IncomingMessage, res: ServerResponse, snapshot: unknown): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    res.write(this.format('snapshot', snapshot));
    this.clients.add(res);
    const drop = () => this.clients.delete(res);
    req.on('close', drop);
    res.on('close', drop);
  }

  publish(type: string, data: unknown): void {
    this.tap?.(type, data);
    this.broadcastRaw(this.format(type, data));
  }

  private format(type: string, data: unknown): string {
    return `id: ${++this.seq}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
  }

  private broadcastRaw(text: string): void {
    for (const c of this.clients) {
      if (c.writableLength > MAX_BUFFERED) {
        this.clients.delete(c);
        c.destroy();
        continue;
      }
      c.write(text);
    }
  }

  close(): void {
    clearInterval(this.timer);
    for (const c of this.clients) c.end();
    this.clients.clear();
  }
}
