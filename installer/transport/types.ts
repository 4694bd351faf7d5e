/**
 * The one interface of a layer transport (installer/transport/*.ts). A transport only delivers a
 * blob's bytes, in order and each once, into the sink it is given; the dispatch
 * (installer/transport/index.ts) opens the sink, and after `deliver` resolves it checks the size
 * and the sha256 and completes the extraction. A transport therefore cannot install a layer
 * that was not verified, and all of them share one extractor.
 *
 * `deliver` throws on any failure (no session, a late join, a receiver that died, a bad
 * stream); for every transport but http the dispatch then warns and applies the layer over HTTP.
 */
import type { ProgressSink } from '../../common/progress.js';
import type { LayerRef, TransportConfig, TransportKind } from '../../common/protocol.js';
import type { ServerClient } from '../client.js';
import type { Backoff } from '../retry.js';
import type { LayerSink } from './sink.js';

export interface TransportOptions {
  /** The server (transport.baseUrl): blobs over HTTP and every transport's fallback. */
  baseUrl: string;
  token?: string;
  /** The deployment's transport settings (InstallConfig.transport). */
  config?: TransportConfig;
  /** The installer API, for transports that ask the server (session state, swarm membership). */
  client?: ServerClient;
  /** Position in the image (0-based), for messages. */
  index?: number;
  progress?: ProgressSink;
  backoff?: Backoff;
  /** A directory on the target's file system for a transport that stages a layer whole (torrent). */
  stageDir?: string;
  /** Aborted when the install stops. */
  signal?: AbortSignal;
}

export interface LayerTransport {
  /** 'local': a restore medium (installer/transport/local.ts), which has no server to fall back to. */
  readonly kind: TransportKind | 'local';
  /** Where the bytes come from when it is not the server itself (a mirror's URL). */
  readonly source?: string;
  /** Write every byte of `ref`'s blob into `sink`, in order; resolve after the last one. */
  deliver(ref: LayerRef, sink: LayerSink, o: TransportOptions): Promise<void>;
}
