/**
 * The wire contract between the image server and its clients (the installer, the
 * CLI, the monitor). Both sides import these types; change them in one place.
 *
 * Authentication: every /api call carries `Authorization: Bearer TOKEN`.
 *  - the admin token (created at the server's first start, file `admin.token`, mode 0600)
 *    for /api/v1/admin/…;
 *  - a deploy token (random, scoped to one deployment, expiring) for /api/v1/install/…
 *    and for the blobs that deployment's image uses.
 */

export const API_PREFIX = '/api/v1';

/** Installer side (deploy token). */
export const INSTALL_ROUTES = {
  /** GET → InstallConfig */
  config: `${API_PREFIX}/install/config`,
  /** POST {events: ProgressEvent[]} → {ok: true}; also carries heartbeats and log lines. */
  events: `${API_PREFIX}/install/events`,
  /** POST InstallResult → {ok: true}. Success switches the node's boot action to local. */
  result: `${API_PREFIX}/install/result`,
  /** POST Inventory → {ok: true, properties: N}: the node's hw.* properties, replaced as a set. */
  inventory: `${API_PREFIX}/install/inventory`,
  /** POST SshHostKeys → {ok: true, recorded: N}: the installed system's fresh SSH host keys, recorded for the node. */
  sshHostKeys: `${API_PREFIX}/install/ssh-host-keys`,
} as const;

/** Blobs are content-addressed: GET/HEAD /blobs/sha256:<64 hex>, with Range support. */
export const BLOB_PREFIX = '/blobs/';
export function blobPath(digest: string): string {
  return BLOB_PREFIX + digest;
}
export const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/** Network boot: GET /boot/ipxe?mac=MAC → iPXE script (text/plain). No token (firmware can't carry one). */
export const BOOT_ROUTES = {
  ipxe: '/boot/ipxe',
  kernel: '/boot/vmlinuz',
  initrd: '/boot/initrd.img',
} as const;

export type LayerMediaType =
  | 'application/vnd.oci.image.layer.v1.tar'
  | 'application/vnd.oci.image.layer.v1.tar+gzip'
  | 'application/vnd.oci.image.layer.v1.tar+zstd';

export interface LayerRef {
  digest: string; // sha256 of the stored (compressed) bytes
  size: number; // stored bytes
  mediaType: LayerMediaType;
  /** Bytes of the uncompressed tar stream, when known (for progress and room checks). */
  uncompressedSize?: number;
}

/**
 * The request bodies are declared once, as schemas (common/schema/api.ts); their types are
 * derived from the schemas and re-exported here. The server validates every body with them.
 */
export type { CustomizationItem, InstallEventsBody, InstallResult, ArmRequest, DeployRequest, NodeCreateBody, NodePatchBody, GroupChangeBody, CloneRequest } from './schema/api.js';
import type { CustomizationItem } from './schema/api.js';

export interface ImageManifest {
  name: string;
  version: number;
  /** sha256 of the canonical manifest JSON: what a deployment records. */
  digest: string;
  /** The master image's name@version, for a clone. */
  master?: string;
  layers: LayerRef[];
  customizations: CustomizationItem[];
  createdAt: string;
}

export type BootAction = 'install' | 'local';
export type FinishAction = 'reboot' | 'poweroff' | 'stay';

export interface InstallConfig {
  node: { name: string; macs: string[]; properties: Record<string, string> };
  /**
   * identity: the record's identity seed (32 hex digits): the installer derives the file
   * system, RAID and GPT UUIDs from it (layout/uuid.ts deploymentSeed). A redeploy keeps it.
   */
  deployment: { id: number; expiresAt: string; identity?: string };
  image: ImageManifest;
  layout: { xml: string; digest: string };
  /** Customization values: hostname, network.*, ssh.*, and anything templates use. */
  inputs: Record<string, string>;
  transport: TransportConfig;
  /** Bootloader override from the node: 'auto' follows the layout, else detects. */
  bootloader: 'auto' | 'none' | 'bios' | 'uefi';
  finish: FinishAction;
  /** Optional operator mapping of layout disks to devices: {"/dev/sda": "/dev/vda"}. */
  diskMap?: Record<string, string>;
}

/** How a node fetches its layers. Every transport falls back to HTTP from `baseUrl`. */
export const TRANSPORTS = ['http', 'torrent', 'multicast'] as const;
export type TransportKind = (typeof TRANSPORTS)[number];

/** Multicast session options, kept in the deployment record (`ferry deploy --min-receivers …`). */
export interface MulticastOptions {
  /** Start when this many receivers joined (default: every deployment of the batch using the layer). */
  minReceivers?: number;
  /** Start anyway this many seconds after the first receiver joined. */
  maxWaitS: number;
  /** udp-sender's --max-bitrate (udpcast syntax: 70m, 500k). */
  maxBitrate: string;
}

export interface TransportConfig {
  kind: TransportKind;
  /** The server: blobs over HTTP, and every transport's fallback. */
  baseUrl: string;
  multicast?: MulticastOptions;
  /**
   * Static HTTP mirrors of the server's blob store (`ferry serve --mirror URL`): the blob
   * sha256:HEX is at URL/sha256/HEX. Tried in order before baseUrl; the digest is the only trust.
   */
  mirrors?: string[];
}

/**
 * Multicast sessions (deploy token). POST {layer: DIGEST} → MulticastJoin: the installer asks
 * before starting udp-receiver for a layer; the answer binds the stream to one session and one
 * layer (its own port and data address, and a header line the stream starts with).
 * GET ?layer=DIGEST → MulticastSessionState (what the server knows of the session: for tests,
 * the monitor and the operator).
 */
export const MULTICAST_ROUTES = {
  join: `${API_PREFIX}/install/multicast/join`,
  session: `${API_PREFIX}/install/multicast/session`,
} as const;

/**
 * BitTorrent (deploy token). GET torrent?layer=DIGEST → LayerTorrentAnswer (the layer's
 * deterministic .torrent, base64); GET announce?info_hash=… is the tracker (BEP 3/23, bencoded,
 * only for the image of the token); GET swarm?layer=DIGEST → the swarm's state (has every peer
 * the layer?), which the installer asks before it stops seeding.
 */
export const TORRENT_ROUTES = {
  torrent: `${API_PREFIX}/install/torrent`,
  announce: `${API_PREFIX}/install/torrent/announce`,
  swarm: `${API_PREFIX}/install/torrent/swarm`,
} as const;

export interface LayerTorrentAnswer {
  layer: string;
  infoHash: string;
  pieceLength: number;
  /** The .torrent file, base64. */
  torrent: string;
}

export interface TorrentSwarmState {
  layer: string;
  infoHash: string;
  peers: number;
  complete: number;
  incomplete: number;
  done: boolean;
  uploaded: number;
}

export type MulticastJoin =
  | {
      state: 'joined';
      /** The session id (image, batch, layer). */
      session: string;
      layer: string;
      /** udp-sender's data address and its even port base (portbase, portbase+1). */
      address: string;
      portbase: number;
      /** The first line of the stream, before the blob's bytes: `FERRYMC1 SESSION DIGEST SIZE\n`. */
      header: string;
      /** The session starts at the latest this long after the first receiver joined. */
      maxWaitS: number;
    }
  /** The session already started (a late joiner), or the server cannot run one: use HTTP now. */
  | { state: 'late' | 'unavailable'; reason: string; code: string };

export interface MulticastSessionState {
  session: string;
  layer: string;
  state: 'gathering' | 'sending' | 'done' | 'failed';
  expected: number;
  /** Deployment ids that joined, that udp-sender connected, and that it dropped (held it back). */
  joined: number[];
  connected: string[];
  dropped: number[];
  late: number[];
  /** The asking deployment's own standing in the session. */
  self: 'joined' | 'dropped' | 'late' | 'none';
}

/** Admin API: arm a deployment (used by `ferry deploy` and `ferry install --node`). */
export const ADMIN_ROUTES = {
  deployments: `${API_PREFIX}/admin/deployments`,
} as const;
export interface ArmResponse {
  deployment: { id: number; node: string; token: string; expiresAt: string };
}

/** Error bodies from the server: the FerryError's JSON. */
export interface ErrorBody {
  error: { code: string; message: string; hint?: string; details?: Record<string, unknown> };
}
