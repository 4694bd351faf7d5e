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

/** The discovery boot's one route (a discovery token, bound to one MAC, good for one post). */
export const DISCOVERY_ROUTES = {
  /** POST Inventory → {ok: true, mac, properties: N}: stored with the discovered MAC. */
  inventory: `${API_PREFIX}/discovery/inventory`,
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

/**
 * The request bodies are declared once, as schemas (common/schema/api.ts); their types are
 * derived from the schemas and re-exported here. The server validates every body with them.
 */
export type { CustomizationItem, InstallEventsBody, InstallResult, ArmRequest, DeployRequest, NodeCreateBody, NodePatchBody, GroupChangeBody, CloneRequest } from './schema/api.js';

/**
 * So are the answers (common/schema/responses.ts): the install configuration, armed deployments,
 * the record, node, group and image bodies and the error body. Their types are derived from the
 * schemas and re-exported here; a unit test validates every route's answers against them.
 */
export type {
  LayerMediaType, LayerRef, ImageManifest, TransportKind, MulticastOptions, TransportConfig, BootAction, FinishAction, InstallConfig, ArmResponse, ErrorBody,
  LayerTorrentAnswer, TorrentSwarmState, MulticastJoin, MulticastSessionState,
} from './schema/responses.js';
export { TRANSPORTS } from './schema/responses.js';

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

// The fan-out answers (LayerTorrentAnswer, TorrentSwarmState, MulticastJoin,
// MulticastSessionState) are declared in common/schema/responses.ts, re-exported above.

/** Admin API: arm a deployment (used by `ferry deploy` and `ferry install --node`). */
export const ADMIN_ROUTES = {
  deployments: `${API_PREFIX}/admin/deployments`,
} as const;
