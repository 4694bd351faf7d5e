/**
 * The wire contract, declared once: every request body the server accepts (installer API,
 * admin API) and the image's customization items, as JSON Schema built with TypeBox. The
 * TypeScript types are derived from these schemas (`Static<…>`), the server validates with
 * them (server/api/, through common/schema/validate.ts), the CLI validates customization
 * files with the same schema, and docs/customizations.md is checked against it.
 *
 * `ferryMessage` (an annotation keyword registered in validate.ts) is the problem text an
 * operator reads when a value breaks the rules of that schema; the JSON path comes from ajv.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { PHASES } from '../progress.js';
import { PowerSettingsSchema } from './power.js';
import { AnyObject, Enum, ImageRef, LayoutRef, Mac, Name, SELECTOR_PATTERN, StringList, StringMap, Tagged, Ttl, contract } from './builders.js';

// ------------------------------------------------------------------ progress events

export const EVENT_STATES = ['start', 'progress', 'end', 'error', 'info', 'warning', 'heartbeat'] as const;
export type EventState = (typeof EVENT_STATES)[number];
export const MAX_EVENTS_PER_POST = 1000;

/** One progress event (common/progress.ts). Unknown fields are accepted and not stored. */
export const ProgressEventSchema = Type.Object(
  {
    phase: Type.String({ minLength: 1, maxLength: 64, ferryMessage: `must be a string of 1-64 characters (${PHASES.join(', ')}, …)` }),
    state: Enum(EVENT_STATES),
    /** What is being worked on: a layer digest, a device, a file. */
    object: Type.Optional(Type.String({ maxLength: 1024, ferryMessage: 'must be a string of at most 1024 characters' })),
    bytes: Type.Optional(Type.Number({ minimum: 0, ferryMessage: 'must be a non-negative number' })),
    total: Type.Optional(Type.Number({ minimum: 0, ferryMessage: 'must be a non-negative number' })),
    message: Type.Optional(Type.String({ maxLength: 16384, ferryMessage: 'must be a string of at most 16384 characters' })),
    /** On `error`: the error's code and data. */
    code: Type.Optional(Type.String({ maxLength: 1024, ferryMessage: 'must be a string of at most 1024 characters' })),
    details: Type.Optional(AnyObject),
    /** ISO time; set by the emitter if absent. */
    ts: Type.Optional(Type.String({ format: 'date-time', ferryMessage: 'must be an ISO 8601 time' })),
  },
  { ferryMessage: 'must be an object' },
);

// ------------------------------------------------------------------ installer API (deploy token)

/** POST /api/v1/install/events */
export const InstallEventsBodySchema = contract(
  Type.Object(
  {
    events: Type.Array(ProgressEventSchema, { maxItems: MAX_EVENTS_PER_POST, ferryMessage: `must be an array of at most ${MAX_EVENTS_PER_POST} events per request` }),
    /** The installer run's id, and each event's number in that run (as many as events): a batch sent again after a lost answer is stored once. */
    run: Type.Optional(Type.String({ pattern: '^[0-9a-f]{8,32}$', ferryMessage: 'must be 8 to 32 hex digits' })),
    seqs: Type.Optional(Type.Array(Type.Integer({ minimum: 0 }), { maxItems: MAX_EVENTS_PER_POST, ferryMessage: 'must be one event number per event' })),
  },
  { ferryMessage: 'must be an object {"events": [...]}' },
),
  'FERRY_E_BAD_REQUEST',
  'the events body',
);

/** The error of a failed or aborted install (also kept in the deployment record). */
export const InstallErrorSchema = Type.Object(
  {
    code: Type.String({ maxLength: 128, ferryMessage: 'must be a string of at most 128 characters' }),
    message: Type.String({ maxLength: 65536, ferryMessage: 'must be a string of at most 65536 characters' }),
    details: Type.Optional(AnyObject),
    phase: Type.Optional(Type.String({ ferryMessage: 'must be a string' })),
  },
  { ferryMessage: 'must be an object' },
);

/** POST /api/v1/install/result. A failure carries its error. */
export const InstallResultSchema = contract(
  Tagged(
  'status',
  [
    Type.Object({ status: Type.Literal('success'), error: Type.Optional(InstallErrorSchema) }),
    Type.Object({ status: Type.Literal('failed'), error: InstallErrorSchema }),
    // The installer was interrupted (SIGINT/SIGTERM) and unmounted what it mounted.
    Type.Object({ status: Type.Literal('aborted'), error: InstallErrorSchema }),
  ],
  { ferryMessage: 'must be an object {"status": "success"|"failed"|"aborted", "error"?: {...}}' },
),
  'FERRY_E_BAD_REQUEST',
  'the result body',
);

// ------------------------------------------------------------------ SSH host keys made at install time

/** POST /api/v1/install/ssh-host-keys: public key lines (at most 8), and the address the node will have, when known. */
export const SshHostKeysSchema = contract(
  Type.Object(
    {
      keys: Type.Array(Type.String({ minLength: 1, maxLength: 8192, pattern: '^(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+) [A-Za-z0-9+/]+=* ?[^\\n]*$', ferryMessage: 'must be an OpenSSH public key line' }), { minItems: 1, maxItems: 8, ferryMessage: 'must be an array of 1 to 8 public key lines' }),
      address: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[A-Za-z0-9.:\\[\\]-]+$', ferryMessage: 'must be a host name or IP address' })),
    },
    { additionalProperties: false, ferryMessage: 'must be an object {"keys": [...], "address"?: "..."}' },
  ),
  'FERRY_E_BAD_REQUEST',
  'the SSH host keys body',
);

// ------------------------------------------------------------------ hardware inventory

const HwStr = Type.Optional(Type.String({ maxLength: 256, ferryMessage: 'must be a string of at most 256 characters' }));
const HwCount = Type.Integer({ minimum: 0, maximum: 1_000_000, ferryMessage: 'must be a whole number' });

/** POST /api/v1/install/inventory (common/inventory.ts Inventory). Bounded: 256 disks and NICs. */
export const InventorySchema = contract(
  Type.Object(
    {
      system: Type.Object({ vendor: HwStr, product: HwStr, serial: HwStr, uuid: HwStr }, { ferryMessage: 'must be an object' }),
      firmware: Type.Object({ vendor: HwStr, version: HwStr, date: HwStr, mode: Enum(['bios', 'uefi'] as const) }, { ferryMessage: 'must be an object' }),
      cpu: Type.Object({ model: HwStr, sockets: HwCount, cores: HwCount, threads: HwCount }, { ferryMessage: 'must be an object' }),
      memoryBytes: Type.Integer({ minimum: 0, ferryMessage: 'must be a whole number of bytes' }),
      disks: Type.Array(
        Type.Object({ path: Type.String({ pattern: '^/dev/', maxLength: 256, ferryMessage: 'must be a /dev path' }), sizeBytes: Type.Integer({ minimum: 0, ferryMessage: 'must be a whole number of bytes' }), model: HwStr, serial: HwStr, wwn: HwStr, rotational: Type.Boolean({ ferryMessage: 'must be true or false' }), transport: HwStr, byPath: HwStr }, { ferryMessage: 'must be an object' }),
        { maxItems: 256, ferryMessage: 'must be an array of at most 256 disks' },
      ),
      nics: Type.Array(
        Type.Object({ name: Type.String({ maxLength: 64, ferryMessage: 'must be an interface name' }), mac: Type.String({ pattern: '^[0-9a-f]{2}(:[0-9a-f]{2}){5}$', ferryMessage: 'must be a MAC aa:bb:cc:dd:ee:ff' }), driver: HwStr, speedMbps: Type.Optional(HwCount), link: Enum(['up', 'down', 'unknown'] as const) }, { ferryMessage: 'must be an object' }),
        { maxItems: 256, ferryMessage: 'must be an array of at most 256 NICs' },
      ),
    },
    { ferryMessage: 'must be an inventory object' },
  ),
  'FERRY_E_BAD_REQUEST',
  'the inventory body',
);
export type InventoryBody = Static<typeof InventorySchema>;

// ------------------------------------------------------------------ customization items

const AbsPath = Type.String({ pattern: '^/', ferryMessage: 'must be an absolute path inside the image' });
const FileMode = Type.Integer({ minimum: 0, ferryMessage: 'must be a non-negative integer' });
const Str = (ferryMessage = 'must be a string') => Type.String({ ferryMessage });
const item = <const K extends string, P extends Record<string, TSchema>>(kind: K, props: P, description: string) =>
  Type.Object({ kind: Type.Literal(kind), ...props }, { additionalProperties: false, description, ferryMessage: 'must be an object' });

export const NETWORK_SYSTEMS = ['auto', 'ifupdown', 'networkd', 'networkmanager', 'netplan'] as const;

/** What to customize: declared by the image, values come from node/deployment inputs. */
export const CustomizationItemSchema = Tagged(
  'kind',
  [
    item('hostname', {}, 'Sets the hostname from inputs.hostname, else the node\'s name.'),
    item('network', { system: Type.Optional(Enum(NETWORK_SYSTEMS, { description: 'which configuration system to write; auto detects it in the image' })) }, 'Writes the network configuration from inputs network.mode=dhcp|static, network.address=CIDR, network.gateway, network.dns, network.interface.'),
    item(
      'file',
      {
        path: AbsPath,
        content: Type.String({ description: 'the file\'s content, as text or in base64 (see encoding)', ferryMessage: 'must be a string' }),
        encoding: Type.Optional(Enum(['utf8', 'base64'] as const, { description: 'how content is written' })),
        mode: Type.Optional(FileMode),
        uid: Type.Optional(FileMode),
        gid: Type.Optional(FileMode),
      },
      'Writes a file with the given content.',
    ),
    item(
      'regexp',
      {
        path: AbsPath,
        pattern: Type.String({ format: 'regexp', ferryMessage: 'is not a valid regular expression' }),
        flags: Type.Optional(Type.String({ pattern: '^[dgimsuy]*$', ferryMessage: 'must hold only the regular expression flags d, g, i, m, s, u, y' })),
        replacement: Type.String({ description: 'what replaces each match; $1… name groups', ferryMessage: 'must be a string' }),
      },
      'Replaces what a regular expression matches in a file of the image.',
    ),
    item('template', { path: AbsPath, template: Str(), mode: Type.Optional(FileMode) }, 'Writes a file from a template: {{ name }} is replaced by the input or node field of that name.'),
    item('authorized-keys', {
      user: Type.String({ description: 'the user (of the image\'s /etc/passwd)', ferryMessage: 'must be a string' }),
      keys: Type.Optional(Type.Array(Type.String(), { description: 'one public key per string', ferryMessage: 'must be an array of strings' })),
      missingUser: Type.Optional(Enum(['error', 'warn'] as const, { description: 'when the image has no such user: the install fails (error, the default) or goes on with a warning (warn; what ssh-authorize-ferry becomes)' })),
    }, 'Adds SSH keys to a user\'s authorized_keys, plus those of input ssh.authorized_keys.'),
    item('ssh-authorize-ferry', { user: Type.Optional(Type.String({ description: 'the user (of the image\'s /etc/passwd); root when left out', ferryMessage: 'must be a string' })) }, 'Authorizes Ferry\'s own SSH key (ferry ssh-key) for root (or user), so that ferry exec and ferry push reach the node: the server turns it into an authorized-keys item with the key.'),
    item('script', { script: Type.String({ description: 'the script\'s text', ferryMessage: 'must be a string' }), interpreter: Type.Optional(Type.String({ description: 'the program that runs it, inside the target', ferryMessage: 'must be a string' })) }, 'Runs a script inside the target with /dev, /proc and /sys bound.'),
  ],
  { ferryMessage: 'must be an object' },
);

/** POST /api/v1/admin/images/NAME/customizations, and `ferry image … --customizations FILE`. */
export const CustomizationsSchema = contract(
  Type.Array(CustomizationItemSchema, { ferryMessage: 'must be a JSON array of customization items' }),
  'FERRY_E_BAD_CUSTOMIZATIONS',
  'customization items',
);

// ------------------------------------------------------------------ admin API (admin token)

/**
 * The transport options of `ferry deploy` (--transport, --min-receivers, --max-wait, --max-bitrate, --seed-wait),
 * as the deploy API takes them; server/db/deployments.ts transportRequest checks them further
 * (the same check the CLI's strings go through).
 */
const transportFields = {
  transport: Type.Optional(Type.String({ maxLength: 16, ferryMessage: 'must be http, torrent or multicast' })),
  minReceivers: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, ferryMessage: 'must be a whole number of receivers from 1 to 10000' })),
  maxWait: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600, ferryMessage: 'must be a whole number of seconds from 1 to 3600' })),
  maxBitrate: Type.Optional(Type.String({ maxLength: 16, ferryMessage: 'must be a bit rate such as 80m, 500k or 1g' })),
  seedWait: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600, ferryMessage: 'must be a whole number of seconds from 0 to 3600' })),
};

/** POST /api/v1/admin/deployments: arm one node (`ferry deploy`, `ferry install --node`). */
export const ArmRequestSchema = contract(
  Type.Object(
  {
    node: Name('node'),
    image: Type.Optional(ImageRef),
    layout: Type.Optional(LayoutRef),
    inputs: Type.Optional(StringMap()),
    ttl: Type.Optional(Ttl),
    ...transportFields,
  },
  { additionalProperties: false, ferryMessage: 'must be an object {"node": NAME, "image"?: IMG, "layout"?: XML}' },
),
  'FERRY_E_BAD_REQUEST',
  'the deployment request',
);

/** POST /api/v1/admin/deploy: several nodes at once, selected as on the command line. */
export const DeployRequestSchema = contract(
  Type.Object(
  {
    select: Type.Array(Type.String({ pattern: SELECTOR_PATTERN, ferryMessage: 'is not a node name, @group or property=value' }), {
      minItems: 1,
      ferryMessage: 'must name at least one node, @group or property=value',
    }),
    image: Type.Optional(ImageRef),
    layout: Type.Optional(LayoutRef),
    inputs: Type.Optional(StringMap()),
    ttl: Type.Optional(Ttl),
    ...transportFields,
  },
  { additionalProperties: false, ferryMessage: 'must be an object {"select": [NAME | @GROUP | KEY=VALUE, ...]}' },
),
  'FERRY_E_BAD_REQUEST',
  'the deploy request',
);

/** A selection of nodes, as on the command line: NAME, @GROUP or KEY=VALUE. */
const Selection = () =>
  Type.Array(Type.String({ pattern: SELECTOR_PATTERN, ferryMessage: 'is not a node name, @group or property=value' }), {
    minItems: 1,
    ferryMessage: 'must name at least one node, @group or property=value',
  });

/** The power actions (server/power/types.ts POWER_ACTIONS; a unit test keeps the two equal). */
export const POWER_ACTION_NAMES = ['on', 'off', 'cycle', 'status'] as const;

/** POST /api/v1/admin/power: one action on a selection, what `ferry power ACTION SELECTION...` does. */
export const PowerRequestSchema = contract(
  Type.Object(
    {
      action: Type.Unsafe<(typeof POWER_ACTION_NAMES)[number]>({ type: 'string', enum: [...POWER_ACTION_NAMES], ferryMessage: `must be one of ${POWER_ACTION_NAMES.join(', ')}` }),
      select: Selection(),
    },
    { additionalProperties: false, ferryMessage: 'must be an object {"action": "on|off|cycle|status", "select": [NAME | @GROUP | KEY=VALUE, ...]}' },
  ),
  'FERRY_E_BAD_REQUEST',
  'the power request',
);

/**
 * PATCH /api/v1/admin/nodes: set and unset properties and inputs on every selected node at once
 * (PowerCockpit's node editor), in one transaction.
 */
export const NodesEditSchema = contract(
  Type.Object(
    {
      select: Selection(),
      properties: Type.Optional(StringMap()),
      unsetProperties: Type.Optional(StringList()),
      inputs: Type.Optional(StringMap()),
      unsetInputs: Type.Optional(StringList()),
    },
    { additionalProperties: false, ferryMessage: 'must be an object {"select": [...], "properties"?, "unsetProperties"?, "inputs"?, "unsetInputs"?}' },
  ),
  'FERRY_E_BAD_REQUEST',
  'the node edit',
);

const nodeFields = {
  addMacs: Type.Optional(Type.Array(Mac, { ferryMessage: 'must be an array of MAC addresses' })),
  removeMacs: Type.Optional(Type.Array(Mac, { ferryMessage: 'must be an array of MAC addresses' })),
  image: Type.Optional(Type.Unsafe<string | null>({ type: ['string', 'null'], ferryMessage: 'must be an image name or null' })),
  layout: Type.Optional(Type.String({ ferryMessage: 'must be the layout XML' })),
  inputs: Type.Optional(StringMap()),
  unsetInputs: Type.Optional(StringList()),
  properties: Type.Optional(StringMap()),
  unsetProperties: Type.Optional(StringList()),
  groups: Type.Optional(StringList()),
  removeGroups: Type.Optional(StringList()),
  /** auto, none, bios or uefi (checked with the node, as on the command line). */
  bootloader: Type.Optional(Str()),
  /** reboot, poweroff or stay. */
  finish: Type.Optional(Str()),
  /** Layout disk to device: {"/dev/sda": "/dev/vda"}; null removes it. */
  diskMap: Type.Optional(
    Type.Unsafe<Record<string, string> | null>({
      type: ['object', 'null'],
      propertyNames: { type: 'string', pattern: '^/dev/', ferryMessage: 'must be a device path /dev/…' },
      additionalProperties: { type: 'string', pattern: '^/dev/', ferryMessage: 'must be a device path /dev/…' },
      ferryMessage: 'must be an object {"/dev/FROM": "/dev/TO"} or null',
    }),
  ),
  /** install or local. */
  bootAction: Type.Optional(Type.Unsafe<'install' | 'local'>({ type: 'string', ferryMessage: 'must be a string' })),
  /**
   * Power settings (what `ferry node set --power …` sets): driver, address, user, password; a
   * field given null is removed (the user, the password), `"power": null` removes them all. The
   * password is write-only: answers and the audit log only say whether one is stored.
   */
  power: Type.Optional(PowerSettingsSchema),
};

/** POST /api/v1/admin/nodes */
export const NodeCreateSchema = contract(
  Type.Object(
  { name: Name('node'), macs: Type.Array(Mac, { minItems: 1, ferryMessage: 'must be a non-empty array of MAC addresses' }), ...nodeFields },
  { additionalProperties: false, ferryMessage: 'must be an object' },
),
  'FERRY_E_BAD_REQUEST',
  'the node',
);

/** PATCH /api/v1/admin/nodes/NAME (a name in the body is ignored: the URL names the node). */
export const NodePatchSchema = contract(
  Type.Object(
  { name: Type.Optional(Str()), macs: Type.Optional(Type.Array(Mac, { ferryMessage: 'must be an array of MAC addresses' })), ...nodeFields },
  { additionalProperties: false, ferryMessage: 'must be an object' },
),
  'FERRY_E_BAD_REQUEST',
  'the node',
);

/** POST (add) and DELETE (remove) /api/v1/admin/groups/NAME */
export const GroupChangeSchema = contract(
  Type.Object(
  { nodes: Type.Optional(StringList()), includes: Type.Optional(StringList()), description: Type.Optional(Str()) },
  { additionalProperties: false, ferryMessage: 'must be an object' },
),
  'FERRY_E_BAD_REQUEST',
  'the group change',
);

/** POST /api/v1/admin/discovered/enlist (`ferry node enlist`): name is a node name or a pattern with {serial}, {mac}, {n}; new enlists even a serial that matches a node. */
export const EnlistRequestSchema = contract(
  Type.Object(
  {
    macs: Type.Array(Mac, { minItems: 1, maxItems: 1000, ferryMessage: 'must be a non-empty array of MAC addresses' }),
    name: Type.String({ minLength: 1, maxLength: 128, ferryMessage: 'must be a node name or a pattern such as rack1-{serial}' }),
    image: Type.Optional(ImageRef), layout: Type.Optional(Type.String({ ferryMessage: 'must be the layout XML' })), groups: Type.Optional(StringList()),
    new: Type.Optional(Type.Boolean({ ferryMessage: 'must be true or false' })),
  },
  { additionalProperties: false, ferryMessage: 'must be an object' },
),
  'FERRY_E_BAD_REQUEST',
  'the enlistment',
);

/** POST /api/v1/admin/images/NAME/clone */
export const CloneRequestSchema = contract(
  Type.Object({ name: Name('image'), inputs: Type.Optional(StringMap()) }, { additionalProperties: false, ferryMessage: 'must be an object {"name": NAME}' }),
  'FERRY_E_BAD_REQUEST',
  'the clone request',
);

/** POST /ui/login: the admin token, exchanged for a console session cookie. */
export const LoginRequestSchema = contract(
  Type.Object({ token: Type.String({ minLength: 1, maxLength: 512 }) }, { additionalProperties: false, ferryMessage: 'must be an object {"token": ADMIN_TOKEN}' }),
  'FERRY_E_BAD_REQUEST',
  'the login request',
);

// ------------------------------------------------------------------ media install records

/** An offline install's record, posted at first boot with the medium's token (common/medium.ts InstallRecord). */
export const InstallRecordSchema = contract(
  Type.Object(
    {
      format: Type.Literal('ferry-install-record/1', { ferryMessage: 'must be "ferry-install-record/1"' }),
      id: Type.String({ pattern: '^[0-9a-f-]{36}$', ferryMessage: 'must be the record\'s UUID' }),
      medium: Type.String({ maxLength: 32, ferryMessage: 'must be the medium label' }),
      node: Name('node'),
      image: Type.Object({ name: Name('image'), version: Type.Integer({ minimum: 1 }), digest: Type.String({ pattern: '^sha256:[0-9a-f]{64}$' }) }, { ferryMessage: 'must be {name, version, digest}' }),
      layout: Type.Object({ xml: Type.String({ maxLength: 1 << 20 }), digest: Type.String() }, { ferryMessage: 'must be {xml, digest}' }),
      inputs: StringMap(),
      status: Type.Union([Type.Literal('success'), Type.Literal('failed'), Type.Literal('aborted')], { ferryMessage: 'must be "success", "failed" or "aborted"' }),
      error: Type.Optional(InstallErrorSchema),
      startedAt: Type.String({ format: 'date-time', ferryMessage: 'must be an ISO time' }),
      endedAt: Type.String({ format: 'date-time', ferryMessage: 'must be an ISO time' }),
      events: Type.Array(ProgressEventSchema, { maxItems: 2000, ferryMessage: 'must be an array of at most 2000 events' }),
    },
    { ferryMessage: 'must be an install record (ferry-install-record/1)' },
  ),
  'FERRY_E_BAD_REQUEST',
  'the install record',
);

export type InstallRecordBody = Static<typeof InstallRecordSchema>;
export type ProgressEventBody = Static<typeof ProgressEventSchema>;
export type InstallEventsBody = Static<typeof InstallEventsBodySchema>;
export type InstallResult = Static<typeof InstallResultSchema>;
export type SshHostKeysBody = Static<typeof SshHostKeysSchema>;
export type CustomizationItem = Static<typeof CustomizationItemSchema>;
export type ArmRequest = Static<typeof ArmRequestSchema>;
export type DeployRequest = Static<typeof DeployRequestSchema>;
export type NodeCreateBody = Static<typeof NodeCreateSchema>;
export type EnlistRequest = Static<typeof EnlistRequestSchema>;
export type NodePatchBody = Static<typeof NodePatchSchema>;
export type GroupChangeBody = Static<typeof GroupChangeSchema>;
export type CloneRequest = Static<typeof CloneRequestSchema>;
export type LoginRequest = Static<typeof LoginRequestSchema>;
export type PowerRequest = Static<typeof PowerRequestSchema>;
export type NodesEditBody = Static<typeof NodesEditSchema>;
