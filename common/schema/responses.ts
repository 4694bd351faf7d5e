/**
 * The wire contract's answers, declared once: what the installer API and the admin API send
 * back (the install configuration, armed deployments, the record, node, group and image bodies,
 * the error body), as JSON Schema built with TypeBox. The request bodies are in api.ts.
 *
 * The TypeScript types derive from these schemas (`Static<…>`, re-exported by common/protocol.ts
 * and used by the server's modules). The server does not serialize with them (fastify's
 * fast-json-stringify would drop an undeclared field silently); test/unit/server/responses.test.ts
 * validates the real answer of every route against them, and objects are closed
 * (`additionalProperties: false`), so a field sent but not declared here fails that test.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { CustomizationItemSchema, InstallErrorSchema, ProgressEventSchema } from './api.js';

/** A closed object: every field it may carry is declared. */
const Obj = <P extends Record<string, TSchema>>(props: P) => Type.Object(props, { additionalProperties: false });
const Strings = Type.Unsafe<Record<string, string>>({ type: 'object', additionalProperties: { type: 'string' } });
const Opt = Type.Optional;
const Time = Type.String({ format: 'date-time' });
const Digest = Type.String({ pattern: '^sha256:[0-9a-f]{64}$' });
const Count = Type.Integer({ minimum: 0 });
/** A string that is one of `values`. */
const Lit = <const T extends readonly string[]>(values: T) => Type.Unsafe<T[number]>({ type: 'string', enum: [...values] });

// ------------------------------------------------------------------ images and their layers

export const LAYER_MEDIA_TYPES = [
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd',
] as const;

export const LayerRefSchema = Obj({
  /** sha256 of the stored (compressed) bytes. */
  digest: Digest,
  /** Stored bytes. */
  size: Count,
  mediaType: Lit(LAYER_MEDIA_TYPES),
  /** Bytes of the uncompressed tar stream, when known (for progress and room checks). */
  uncompressedSize: Opt(Count),
});

const manifestFields = {
  name: Type.String(),
  version: Type.Integer({ minimum: 1 }),
  /** sha256 of the canonical manifest JSON: what a deployment records. */
  digest: Digest,
  /** The master image's name@version, for a clone. */
  master: Opt(Type.String()),
  layers: Type.Array(LayerRefSchema),
  customizations: Type.Array(CustomizationItemSchema),
  createdAt: Time,
};
export const ImageManifestSchema = Obj(manifestFields);

/** An image as the admin API lists it: the manifest plus what only the repository knows. */
export const ImageInfoSchema = Obj({ ...manifestFields, inputs: Strings, size: Count, uncompressedSize: Count });

// ------------------------------------------------------------------ transports

/** How a node fetches its layers. Every transport falls back to HTTP from `baseUrl`. */
export const TRANSPORTS = ['http', 'torrent', 'multicast'] as const;

/** Multicast session options, kept in the deployment record (`ferry deploy --min-receivers …`). */
export const MulticastOptionsSchema = Obj({
  /** Start when this many receivers joined (default: every deployment of the batch using the layer). */
  minReceivers: Opt(Type.Integer({ minimum: 1 })),
  /** Start anyway this many seconds after the first receiver joined. */
  maxWaitS: Type.Integer({ minimum: 1 }),
  /** udp-sender's --max-bitrate (udpcast syntax: 70m, 500k). */
  maxBitrate: Type.String(),
});

/** The transport a deployment uses, as kept in its record (deployments.transport, JSON). */
export const TransportSpecSchema = Obj({
  kind: Lit(TRANSPORTS),
  multicast: Opt(MulticastOptionsSchema),
  /** Torrent: how long the node seeds before its reboot, at most (`ferry deploy --seed-wait S`). */
  seedWaitS: Opt(Count),
});

export const TransportConfigSchema = Obj({
  kind: Lit(TRANSPORTS),
  /** The server: blobs over HTTP, and every transport's fallback. */
  baseUrl: Type.String(),
  multicast: Opt(MulticastOptionsSchema),
  /**
   * Torrent: seconds the node keeps seeding before its reboot until the swarm is done
   * (`ferry deploy --seed-wait S`); the installer's own --seed-wait / ferry.seed_wait= wins.
   */
  seedWaitS: Opt(Count),
  /**
   * Static HTTP mirrors of the server's blob store (`ferry serve --mirror URL`): the blob
   * sha256:HEX is at URL/sha256/HEX. Tried in order before baseUrl; the digest is the only trust.
   */
  mirrors: Opt(Type.Array(Type.String())),
});

// ------------------------------------------------------------------ installer API answers

export const BOOT_ACTIONS = ['install', 'local'] as const;
export const FINISH_ACTIONS = ['reboot', 'poweroff', 'stay'] as const;
export const BOOTLOADER_CHOICES = ['auto', 'none', 'bios', 'uefi'] as const;

/** GET /api/v1/install/config */
export const InstallConfigSchema = Obj({
  node: Obj({ name: Type.String(), macs: Type.Array(Type.String()), properties: Strings }),
  /**
   * identity: the record's identity seed (32 hex digits): the installer derives the file
   * system, RAID and GPT UUIDs from it (layout/uuid.ts deploymentSeed). A redeploy keeps it.
   */
  deployment: Obj({ id: Type.Integer(), expiresAt: Time, identity: Opt(Type.String({ pattern: '^[0-9a-f]{32}$' })) }),
  image: ImageManifestSchema,
  layout: Obj({ xml: Type.String(), digest: Type.String() }),
  /** Customization values: hostname, network.*, ssh.*, and anything templates use. */
  inputs: Strings,
  transport: TransportConfigSchema,
  /** Bootloader override from the node: 'auto' follows the layout, else detects. */
  bootloader: Lit(BOOTLOADER_CHOICES),
  finish: Lit(FINISH_ACTIONS),
  /** Optional operator mapping of layout disks to devices: {"/dev/sda": "/dev/vda"}. */
  diskMap: Opt(Strings),
});

/** POST /api/v1/install/events, /result, /inventory, and admin deletions: a plain acknowledgement. */
export const OkSchema = Obj({ ok: Type.Literal(true) });
export const EventsStoredSchema = Obj({ ok: Type.Literal(true), stored: Count });
export const InventoryStoredSchema = Obj({ ok: Type.Literal(true), properties: Count });

// ------------------------------------------------------------------ fan-out answers (deploy token)

/** GET /api/v1/install/torrent?layer=DIGEST: the layer's deterministic .torrent. */
export const LayerTorrentAnswerSchema = Obj({
  layer: Digest,
  infoHash: Type.String({ pattern: '^[0-9a-f]{40}$' }),
  pieceLength: Type.Integer({ minimum: 1 }),
  /** The .torrent file, base64. */
  torrent: Type.String(),
});

/** GET /api/v1/install/torrent/swarm?layer=DIGEST: has every peer the layer? */
export const TorrentSwarmStateSchema = Obj({
  layer: Digest,
  infoHash: Type.String(),
  peers: Count,
  complete: Count,
  incomplete: Count,
  done: Type.Boolean(),
  uploaded: Count,
  /** The deployments expected in the swarm (the batch's torrent deployments of the image still armed or running)… */
  expected: Opt(Count),
  /** …and how many of them have not yet announced the whole layer. */
  waiting: Opt(Count),
});

/** POST /api/v1/install/multicast/join {layer}: the session to receive, or go to HTTP now. */
export const MulticastJoinSchema = Type.Union([
  Obj({
    state: Type.Literal('joined'),
    /** The session id (image, batch, layer). */
    session: Type.String(),
    layer: Digest,
    /** udp-sender's data address and its even port base (portbase, portbase+1). */
    address: Type.String(),
    portbase: Type.Integer({ minimum: 0, maximum: 65535 }),
    /** The first line of the stream, before the blob's bytes: `FERRYMC1 SESSION DIGEST SIZE\n`. */
    header: Type.String(),
    /** The session starts at the latest this long after the first receiver joined. */
    maxWaitS: Type.Integer({ minimum: 1 }),
  }),
  /** The session already started (a late joiner), or the server cannot run one: use HTTP now. */
  Obj({ state: Lit(['late', 'unavailable'] as const), reason: Type.String(), code: Type.String() }),
]);

/** GET /api/v1/install/multicast/session?layer=DIGEST: what the server knows of the session. */
export const MulticastSessionStateSchema = Obj({
  session: Type.String(),
  layer: Digest,
  state: Lit(['gathering', 'sending', 'done', 'failed'] as const),
  expected: Count,
  /** Deployment ids that joined, that udp-sender connected, and that it dropped (held it back). */
  joined: Type.Array(Type.Integer()),
  connected: Type.Array(Type.String()),
  dropped: Type.Array(Type.Integer()),
  /** Of `dropped`: those the server's pace rule told to leave (late again and again while the others were ready; server/multicast/pace.ts). */
  told: Opt(Type.Array(Type.Integer())),
  late: Type.Array(Type.Integer()),
  /** The asking deployment's own standing in the session. */
  self: Lit(['joined', 'dropped', 'late', 'none'] as const),
});

// ------------------------------------------------------------------ deployments

export const DEPLOYMENT_STATUSES = ['armed', 'running', 'success', 'failed', 'superseded', 'cancelled', 'lost', 'aborted'] as const;

/** A deployment record as the admin API, `ferry history` and the monitor show it. */
export const DeploymentInfoSchema = Obj({
  id: Type.Integer(),
  /** Absent for an install; `update` for `ferry update` over SSH (no token, no boot). */
  kind: Opt(Lit(['update'] as const)),
  node: Type.String(),
  image: Type.String(),
  imageDigest: Digest,
  layoutDigest: Type.String(),
  inputs: Strings,
  transport: TransportSpecSchema,
  batch: Opt(Type.String()),
  status: Lit([...DEPLOYMENT_STATUSES, 'expired'] as const),
  stage: Opt(Type.String()),
  redeployOf: Opt(Type.Integer()),
  createdBy: Type.String(),
  createdAt: Time,
  startedAt: Opt(Time),
  endedAt: Opt(Time),
  expiresAt: Time,
  error: Opt(InstallErrorSchema),
});

/** One stored progress event: the event as received, its id and when it arrived. */
export const StoredEventSchema = Obj({ ...ProgressEventSchema.properties, id: Type.Integer(), receivedAt: Time });

/** What arming answers for each node: the deploy token is shown once, here. */
export const ArmedSchema = Obj({
  id: Type.Integer(),
  node: Type.String(),
  token: Type.String({ pattern: '^ferry-deploy-' }),
  expiresAt: Time,
  /** Warnings of the arm-time checks (the layout's, and what could not be checked here). */
  warnings: Opt(Type.Array(Type.Object({ severity: Type.String(), code: Type.String(), message: Type.String() }))),
});

/** POST /api/v1/admin/deployments and …/deployments/ID/redeploy */
export const ArmResponseSchema = Obj({ deployment: ArmedSchema });
/** POST /api/v1/admin/deploy (a selection: one batch) */
export const DeployResponseSchema = Obj({ deployments: Type.Array(ArmedSchema) });
/** GET /api/v1/admin/deployments */
export const DeploymentListSchema = Obj({ deployments: Type.Array(DeploymentInfoSchema) });
/** GET /api/v1/admin/deployments/ID */
export const DeploymentRecordSchema = Obj({ deployment: DeploymentInfoSchema, events: Type.Array(StoredEventSchema) });
/** GET /api/v1/admin/deployments/ID/events */
export const DeploymentEventsSchema = Obj({ events: Type.Array(StoredEventSchema) });
/** POST /api/v1/admin/cancel */
export const CancelResponseSchema = Obj({ cancelled: Type.Array(DeploymentInfoSchema), idle: Type.Array(Type.String()) });

// ------------------------------------------------------------------ nodes and groups

export const NodeInfoSchema = Obj({
  name: Type.String(),
  macs: Type.Array(Type.String()),
  image: Opt(Type.String()),
  layout: Opt(Obj({ digest: Type.String(), source: Opt(Type.String()) })),
  inputs: Strings,
  properties: Strings,
  bootAction: Lit(BOOT_ACTIONS),
  bootloader: Lit(BOOTLOADER_CHOICES),
  finish: Lit(FINISH_ACTIONS),
  diskMap: Opt(Strings),
  /** The node's own default transport, when set. */
  transport: Opt(Lit(TRANSPORTS)),
  /** Where Ferry reaches the node over SSH (HOST[:PORT]). */
  address: Opt(Type.String()),
  /** The SSH host keys Ferry trusts for it, by fingerprint, with where each came from. */
  hostKeys: Type.Array(Obj({ fingerprint: Type.String(), source: Type.String() })),
  /** The power driver and address (never the password: only whether one is stored). */
  power: Opt(Obj({ driver: Type.String(), address: Type.String(), user: Opt(Type.String()), password: Type.Boolean() })),
  /** The image version the node runs: its newest successful record, install or update. */
  running: Opt(Obj({ image: Type.String(), digest: Type.String(), deployment: Type.Integer(), kind: Lit(['install', 'update'] as const), since: Time })),
  groups: Type.Array(Type.String()),
  createdAt: Time,
  updatedAt: Time,
});

export const GroupInfoSchema = Obj({
  name: Type.String(),
  description: Opt(Type.String()),
  /** Default transport of the group's nodes (a node's own default wins). */
  transport: Opt(Lit(TRANSPORTS)),
  nodes: Type.Array(Type.String()),
  includes: Type.Array(Type.String()),
  /** Every node of the group and of the groups it includes, recursively. */
  allNodes: Type.Array(Type.String()),
});

/** A discovery boot's report, summarised (`ferry node ls --discovered`). */
export const InventorySummarySchema = Obj({
  vendor: Opt(Type.String()),
  product: Opt(Type.String()),
  serial: Opt(Type.String()),
  cpus: Count,
  memoryBytes: Count,
  disks: Type.Array(Obj({ path: Type.String(), sizeBytes: Count, serial: Opt(Type.String()) })),
  nics: Type.Array(Type.String()),
  reportedAt: Time,
});
export const DiscoveredInfoSchema = Obj({ mac: Type.String(), firstSeen: Time, lastSeen: Time, seen: Count, address: Opt(Type.String()), inventory: Opt(InventorySummarySchema) });

/** GET/PATCH /api/v1/admin/nodes/NAME, POST /nodes */
export const NodeBodySchema = Obj({ node: NodeInfoSchema });
/** GET /api/v1/admin/nodes */
export const NodeListSchema = Obj({ nodes: Type.Array(NodeInfoSchema) });
/** GET /api/v1/admin/discovered */
export const DiscoveredListSchema = Obj({ discovered: Type.Array(DiscoveredInfoSchema) });
/** POST /api/v1/admin/discovered/enlist: the nodes made */
export const EnlistedSchema = Obj({ nodes: Type.Array(NodeInfoSchema) });
/** POST /api/v1/discovery/inventory (a discovery token): stored with the discovered MAC */
export const DiscoveryStoredSchema = Obj({ ok: Type.Literal(true), mac: Type.String(), properties: Count });
/** GET/POST /api/v1/admin/groups/NAME */
export const GroupBodySchema = Obj({ group: GroupInfoSchema });
/** GET /api/v1/admin/groups */
export const GroupListSchema = Obj({ groups: Type.Array(GroupInfoSchema) });

// ------------------------------------------------------------------ images, store upkeep, audit

/** GET /api/v1/admin/images/NAME, POST …/customizations and …/clone */
export const ImageBodySchema = Obj({ image: ImageInfoSchema });
/** GET /api/v1/admin/images */
export const ImageListSchema = Obj({ images: Type.Array(ImageInfoSchema) });
/** DELETE /api/v1/admin/images/NAME: the versions removed */
export const ImageRemovedSchema = Obj({ removed: Type.Array(Type.String()) });
export const VerifyResultSchema = Obj({ digest: Digest, ok: Type.Boolean(), problem: Opt(Type.String()), images: Type.Array(Type.String()) });
/** POST /api/v1/admin/images/NAME/verify */
export const VerifyResponseSchema = Obj({ results: Type.Array(VerifyResultSchema) });
/** POST /api/v1/admin/gc */
export const GcResponseSchema = Obj({
  removed: Type.Array(Digest),
  freedBytes: Count,
  kept: Count,
  /** ferry update's cached exported trees removed (server/store/tree-cache.ts), by digest hex. */
  trees: Type.Array(Type.String()),
});
export const AuditEntrySchema = Obj({ id: Type.Integer(), ts: Time, actor: Type.String(), action: Type.String(), object: Type.Union([Type.String(), Type.Null()]), details: Opt(Type.Unknown()) });
/** GET /api/v1/admin/audit */
/**
 * A power action on the admin event stream (`event: power`): every on, off, cycle and
 * install-start (`ferry deploy --power`) that `ferry power`, the API or the console made, as its
 * audit entry says (server/watch.ts watchPower). Never a password.
 */
export const PowerEventSchema = Obj({
  id: Type.Integer(),
  at: Time,
  actor: Type.String(),
  action: Lit(['on', 'off', 'cycle', 'install'] as const),
  node: Type.String(),
  driver: Opt(Type.String()),
  ok: Type.Boolean(),
  state: Opt(Lit(['on', 'off', 'unknown'] as const)),
  pxeOnce: Opt(Type.Boolean()),
  started: Opt(Lit(['on', 'cycle'] as const)),
  /** A failed action's error code. */
  error: Opt(Type.String()),
});
export type PowerEvent = Static<typeof PowerEventSchema>;

export const AuditListSchema = Obj({ audit: Type.Array(AuditEntrySchema) });

// ------------------------------------------------------------------ errors

/** Every refusal and failure: the FerryError's JSON (problems of a bad body are in details.problems). */
export const ErrorBodySchema = Obj({
  error: Obj({ code: Type.String({ pattern: '^FERRY_[EW]_[A-Z0-9_]+$' }), message: Type.String(), hint: Opt(Type.String()), details: Opt(Type.Unsafe<Record<string, unknown>>({ type: 'object' })) }),
});

export type LayerMediaType = (typeof LAYER_MEDIA_TYPES)[number];
export type LayerRef = Static<typeof LayerRefSchema>;
export type ImageManifest = Static<typeof ImageManifestSchema>;
export type ImageInfoBody = Static<typeof ImageInfoSchema>;
export type TransportKind = (typeof TRANSPORTS)[number];
export type MulticastOptions = Static<typeof MulticastOptionsSchema>;
export type TransportSpec = Static<typeof TransportSpecSchema>;
export type TransportConfig = Static<typeof TransportConfigSchema>;
export type BootAction = (typeof BOOT_ACTIONS)[number];
export type FinishAction = (typeof FINISH_ACTIONS)[number];
export type InstallConfig = Static<typeof InstallConfigSchema>;
export type DeploymentStatus = (typeof DEPLOYMENT_STATUSES)[number];
export type DeploymentInfoBody = Static<typeof DeploymentInfoSchema>;
export type StoredEventBody = Static<typeof StoredEventSchema>;
export type ArmResponse = Static<typeof ArmResponseSchema>;
export type NodeInfoBody = Static<typeof NodeInfoSchema>;
export type GroupInfoBody = Static<typeof GroupInfoSchema>;
export type DiscoveredInfoBody = Static<typeof DiscoveredInfoSchema>;
export type VerifyResultBody = Static<typeof VerifyResultSchema>;
export type AuditEntryBody = Static<typeof AuditEntrySchema>;
export type ErrorBody = Static<typeof ErrorBodySchema>;
export type LayerTorrentAnswer = Static<typeof LayerTorrentAnswerSchema>;
export type TorrentSwarmState = Static<typeof TorrentSwarmStateSchema>;
export type MulticastJoin = Static<typeof MulticastJoinSchema>;
export type MulticastSessionState = Static<typeof MulticastSessionStateSchema>;
