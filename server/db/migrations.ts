/**
 * Versioned schema migrations. Entry N brings the schema from version N to N+1
 * (PRAGMA user_version). Never edit an entry that has shipped: append a new one.
 */
export const MIGRATIONS: string[] = [
  // 1: the first schema.
  `
  CREATE TABLE layers (
    digest TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    uncompressed_size INTEGER,
    diff_id TEXT,
    created_at TEXT NOT NULL
  );
  CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    digest TEXT NOT NULL,
    master TEXT,
    manifest TEXT NOT NULL,
    inputs TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    UNIQUE (name, version)
  );
  CREATE INDEX images_digest ON images (digest);
  CREATE TABLE image_layers (
    image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    digest TEXT NOT NULL REFERENCES layers (digest),
    PRIMARY KEY (image_id, position)
  );
  CREATE INDEX image_layers_digest ON image_layers (digest);
  CREATE TABLE layouts (
    digest TEXT PRIMARY KEY,
    xml TEXT NOT NULL,
    source TEXT,
    created_at TEXT NOT NULL
  );
  CREATE TABLE nodes (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image TEXT,
    layout_digest TEXT REFERENCES layouts (digest),
    inputs TEXT NOT NULL DEFAULT '{}',
    properties TEXT NOT NULL DEFAULT '{}',
    boot_action TEXT NOT NULL DEFAULT 'local',
    bootloader TEXT NOT NULL DEFAULT 'auto',
    finish TEXT NOT NULL DEFAULT 'reboot',
    disk_map TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE TABLE node_macs (
    mac TEXT PRIMARY KEY,
    node_id INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE
  );
  CREATE TABLE groups (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    created_at TEXT NOT NULL
  );
  CREATE TABLE group_nodes (
    group_id INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    node_id INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, node_id)
  );
  CREATE TABLE group_groups (
    parent_id INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    child_id INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (parent_id, child_id)
  );
  CREATE TABLE deployments (
    id INTEGER PRIMARY KEY,
    node_id INTEGER REFERENCES nodes (id) ON DELETE SET NULL,
    node_name TEXT NOT NULL,
    image_name TEXT NOT NULL,
    image_version INTEGER NOT NULL,
    image_digest TEXT NOT NULL,
    manifest TEXT NOT NULL,
    layout_digest TEXT NOT NULL REFERENCES layouts (digest),
    inputs TEXT NOT NULL,
    transport TEXT NOT NULL,
    bootloader TEXT NOT NULL,
    finish TEXT NOT NULL,
    disk_map TEXT,
    token TEXT NOT NULL UNIQUE,
    expires_at TEXT NOT NULL,
    status TEXT NOT NULL,
    stage TEXT,
    redeploy_of INTEGER REFERENCES deployments (id),
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    ended_at TEXT,
    error TEXT
  );
  CREATE INDEX deployments_node ON deployments (node_name, id);
  CREATE INDEX deployments_status ON deployments (status);
  CREATE TABLE deployment_events (
    id INTEGER PRIMARY KEY,
    deployment_id INTEGER NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    ts TEXT NOT NULL,
    received_at TEXT NOT NULL,
    phase TEXT NOT NULL,
    state TEXT NOT NULL,
    object TEXT,
    bytes INTEGER,
    total INTEGER,
    message TEXT,
    code TEXT,
    details TEXT
  );
  CREATE INDEX deployment_events_dep ON deployment_events (deployment_id, id);
  CREATE TABLE discovered (
    mac TEXT PRIMARY KEY,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    seen INTEGER NOT NULL,
    address TEXT
  );
  CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT,
    details TEXT
  );
  `,
  // 2: fan-out transports. deployments.transport already holds the transport as JSON
  // ({"kind":"http"}); a node's or a group's default transport (NULL: inherit), and the batch
  // of deployments one `ferry deploy` armed together (a multicast session's receivers).
  `
  ALTER TABLE nodes ADD COLUMN transport TEXT;
  ALTER TABLE groups ADD COLUMN transport TEXT;
  ALTER TABLE deployments ADD COLUMN batch TEXT;
  CREATE INDEX deployments_batch ON deployments (batch);
  `,
  // 3: issue 15 (day two over SSH): a node's SSH address (HOST[:PORT]), and the SSH host keys
  // Ferry trusts, by OpenSSH SHA256 fingerprint: a node's (node_id) or, for a machine that is no
  // node (`image capture --from`), a host:port's (node_id NULL). Recorded by the operator
  // (--host-key), on first contact when asked (--accept-new-host-key), or by an installer.
  `
  ALTER TABLE nodes ADD COLUMN address TEXT;
  CREATE TABLE ssh_host_keys (
    id INTEGER PRIMARY KEY,
    node_id INTEGER REFERENCES nodes (id) ON DELETE CASCADE,
    host TEXT,
    fingerprint TEXT NOT NULL,
    public_key TEXT,
    source TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE UNIQUE INDEX ssh_host_keys_node ON ssh_host_keys (node_id, fingerprint) WHERE node_id IS NOT NULL;
  CREATE UNIQUE INDEX ssh_host_keys_host ON ssh_host_keys (host, fingerprint) WHERE node_id IS NULL;
  `,
  // 4: issue 18, power drivers: one row per node that has one. The secret (a BMC password) lives
  // only here: the database is mode 0600 in a 0700 data directory, and no query that builds a
  // NodeInfo or an API answer reads the column.
  `
  CREATE TABLE node_power (
    node_id INTEGER PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    driver TEXT NOT NULL,
    address TEXT NOT NULL,
    username TEXT,
    secret TEXT,
    updated_at TEXT NOT NULL
  );
  `,
  // 5: issue 17 (identity): every deployment record's identity seed, from which the node's file
  // system, RAID and GPT UUIDs derive. A redeploy copies its record's seed (the same UUIDs
  // again); any other arm draws a fresh one. Existing records get a random one each.
  `
  ALTER TABLE deployments ADD COLUMN identity TEXT;
  UPDATE deployments SET identity = lower(hex(randomblob(16))) WHERE identity IS NULL;
  `,
  // 6: issue 14 (restore media): a medium built with --server gets a token of its own (stored as
  // its sha256 only) that posts install records and nothing else; each posted record becomes a
  // deployment record (transport "medium"), once per record id.
  `
  CREATE TABLE media (
    id INTEGER PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    image_digest TEXT NOT NULL,
    node_name TEXT NOT NULL,
    server TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE TABLE media_records (
    record_id TEXT PRIMARY KEY,
    medium_id INTEGER NOT NULL REFERENCES media (id) ON DELETE CASCADE,
    deployment_id INTEGER NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    received_at TEXT NOT NULL
  );
  `,
  // 7: issue 18 (discovery): with `ferry serve --discover` an unknown MAC boots the inventory
  // mode with a discovery token of its own (stored as its sha256 only, bound to that MAC, dying
  // at its first use or when it expires); the report is kept with the discovered MAC.
  `
  ALTER TABLE discovered ADD COLUMN inventory TEXT;
  ALTER TABLE discovered ADD COLUMN inventory_at TEXT;
  CREATE TABLE discovery_tokens (
    token_sha256 TEXT PRIMARY KEY,
    mac TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
  );
  CREATE INDEX discovery_tokens_mac ON discovery_tokens (mac);
  `,
  // 8: issue 15 (ferry update): a deployment record's kind, `install` (every record before) or
  // `update` (a running node's files brought to an image version over SSH: no token, no boot).
  // An update record of a node with no layout (a machine Ferry did not install) names the
  // layout row 'none', which holds no XML and is never deployed.
  `
  ALTER TABLE deployments ADD COLUMN kind TEXT NOT NULL DEFAULT 'install';
  INSERT OR IGNORE INTO layouts (digest, xml, source, created_at) VALUES ('none', '', 'no layout: an update record of a node Ferry did not install', '1970-01-01T00:00:00.000Z');
  `,
  // 9: issue 17 (arm-time checks): every layer's entries, so that the server knows which paths an
  // image holds without reading its blobs (server/store/layer-index.ts). One row per layer blob:
  // its sorted entry names with their types, deflated (layers/path-index.ts). In the database
  // rather than beside the blob: it is written in the same statement sequence as the layer's row
  // and goes with it (ON DELETE CASCADE when gc removes the row), so no orphan file can outlive a
  // blob and no half-written one can be read. Layers stored before this migration get theirs on
  // first use. `format` is the encoding's version (layers/path-index.ts INDEX_FORMAT): a row of an
  // older format is built again from its blob, as a missing one is.
  `
  CREATE TABLE layer_index (
    digest TEXT PRIMARY KEY REFERENCES layers (digest) ON DELETE CASCADE,
    format INTEGER NOT NULL,
    entries INTEGER NOT NULL,
    paths BLOB NOT NULL,
    created_at TEXT NOT NULL
  );
  `,
  // 10: issue 14 (restore media): `ferry media revoke ID` ends a medium's token; its record posts
  // are refused from then on (FERRY_E_MEDIUM_REVOKED).
  `
  ALTER TABLE media ADD COLUMN revoked_at TEXT;
  ALTER TABLE media ADD COLUMN revoked_by TEXT;
  `,
];
