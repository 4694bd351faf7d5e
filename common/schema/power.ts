/**
 * A node's power settings in an admin request body (POST/PATCH /api/v1/admin/nodes `power`):
 * driver, address, user, password; null for the user or the password removes it, null for the
 * whole object removes the settings. The driver and the address are checked by the driver
 * (server/power checkPowerSettings); the password is write-only.
 */
import { Type } from '@sinclair/typebox';

const s = (what: string, max: number) => ({ type: 'string', minLength: 1, maxLength: max, ferryMessage: `must be ${what} (1-${max} characters)` });

export const PowerSettingsSchema = Type.Unsafe<{ driver?: string; address?: string; user?: string | null; password?: string | null } | null>({
  type: ['object', 'null'],
  properties: {
    driver: s('a power driver: ipmi, redfish, qemu, wol or manual', 32),
    address: { type: 'string', maxLength: 1024, ferryMessage: "must be the driver's address (at most 1024 characters)" },
    user: { anyOf: [s('the BMC user', 256), { type: 'null' }], ferryMessage: 'must be the BMC user or null' },
    password: { anyOf: [s('the BMC password', 1024), { type: 'null' }], ferryMessage: 'must be the BMC password or null (never shown back)' },
  },
  additionalProperties: false,
  ferryMessage: 'must be an object {"driver"?, "address"?, "user"?, "password"?} or null',
});
