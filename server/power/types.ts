/**
 * Power drivers: one module per kind (ipmi, redfish, qemu, wol, manual) behind one interface, so
 * `ferry power` and `ferry deploy --power` never know which kind a node has.
 *
 * A driver gets a PowerTarget (the node's stored power settings, its secret included: drivers are
 * the only code that sees it) and acts on the machine. `status` always asks the machine (its BMC,
 * its QEMU), never a cache.
 */
export const POWER_DRIVERS = ['ipmi', 'redfish', 'qemu', 'wol', 'manual'] as const;
export type PowerDriverKind = (typeof POWER_DRIVERS)[number];

export const POWER_ACTIONS = ['on', 'off', 'cycle', 'status'] as const;
export type PowerAction = (typeof POWER_ACTIONS)[number];

/** What the machine says: on, off, or unknown when the driver cannot ask (wol, manual). */
export type PowerState = 'on' | 'off' | 'unknown';

export interface PowerTarget {
  node: string;
  driver: PowerDriverKind;
  /** Driver-specific: HOST[:PORT] (ipmi), [http(s)://]HOST[:PORT] (redfish), a QMP socket path (qemu), a broadcast ADDRESS[:PORT] (wol). */
  address: string;
  user?: string;
  /** The BMC password; never printed, logged, returned by the API or put on a command line. */
  password?: string;
  /** The node's MACs (wol sends a magic packet to each). */
  macs: string[];
}

export interface PowerResult {
  /** The machine's state after the action, when the driver can tell. */
  state: PowerState;
  /** What the operator must do, for drivers that cannot act (manual). */
  message?: string;
}

export interface PowerDriver {
  readonly kind: PowerDriverKind;
  /** Which actions the driver can take; the others fail with FERRY_E_POWER_UNSUPPORTED. */
  readonly can: { on: boolean; off: boolean; cycle: boolean; status: boolean; pxeOnce: boolean };
  on(t: PowerTarget): Promise<PowerResult>;
  off(t: PowerTarget): Promise<PowerResult>;
  cycle(t: PowerTarget): Promise<PowerResult>;
  status(t: PowerTarget): Promise<PowerResult>;
  /** Make the next boot (only) a network boot. */
  pxeOnce(t: PowerTarget): Promise<void>;
}

/** Every driver call is bounded: a BMC that does not answer fails in this time. */
export const POWER_TIMEOUT_MS = 30_000;
