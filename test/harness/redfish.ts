/**
 * A TEST DOUBLE of a BMC's Redfish service, for the redfish power driver's tests (issue 18 allows
 * one: no real BMC is reachable here). It serves, on loopback, the part of DMTF's schema the driver
 * uses, as DSP0266 and the ComputerSystem schema describe it:
 *
 *   GET   /redfish/v1/Systems                          a ComputerSystemCollection with one member
 *   GET   /redfish/v1/Systems/1                        a ComputerSystem: PowerState, Boot, Actions
 *   PATCH /redfish/v1/Systems/1                        Boot.BootSourceOverrideEnabled / Target
 *   POST  /redfish/v1/Systems/1/Actions/ComputerSystem.Reset   {ResetType}
 *
 * HTTP Basic authentication on every request (401 otherwise). A ResetType not among the
 * advertised AllowableValues is 400 with a Redfish error body. Each boot (On from Off,
 * ForceRestart) is recorded with its boot source: a `Once` override is used by the next boot and
 * then reverts to `Disabled`, as the schema says.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';

export interface RedfishDouble {
  url: string;
  state: { power: 'On' | 'Off'; override: { enabled: string; target: string }; boots: string[]; requests: string[] };
  close(): Promise<void>;
}

const RESET_TYPES = ['On', 'ForceOff', 'ForceRestart', 'GracefulShutdown'];

async function body(req: IncomingMessage): Promise<any> {
  let s = '';
  for await (const c of req) {
    s += c;
    if (s.length > 65536) throw new Error('body too large');
  }
  return s ? JSON.parse(s) : {};
}

export async function startRedfishDouble(o: { user: string; password: string }): Promise<RedfishDouble> {
  const state: RedfishDouble['state'] = { power: 'Off', override: { enabled: 'Disabled', target: 'None' }, boots: [], requests: [] };
  const boot = () => {
    const from = state.override.enabled !== 'Disabled' ? state.override.target : 'Hdd';
    if (state.override.enabled === 'Once') state.override = { enabled: 'Disabled', target: 'None' };
    state.boots.push(from);
  };
  const auth = 'Basic ' + Buffer.from(`${o.user}:${o.password}`).toString('base64');
  const server: Server = createServer(async (req, res) => {
    const send = (code: number, v?: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(v === undefined ? '' : JSON.stringify(v));
    };
    const error = (code: number, message: string) => send(code, { error: { code: 'Base.1.0.GeneralError', message } });
    state.requests.push(`${req.method} ${req.url}`);
    if (req.headers.authorization !== auth) return error(401, 'authentication required');
    try {
      if (req.method === 'GET' && req.url === '/redfish/v1/Systems') {
        return send(200, { '@odata.id': '/redfish/v1/Systems', '@odata.type': '#ComputerSystemCollection.ComputerSystemCollection', Members: [{ '@odata.id': '/redfish/v1/Systems/1' }], 'Members@odata.count': 1 });
      }
      if (req.url === '/redfish/v1/Systems/1' && req.method === 'GET') {
        return send(200, {
          '@odata.id': '/redfish/v1/Systems/1',
          '@odata.type': '#ComputerSystem.v1_20_0.ComputerSystem',
          Id: '1',
          PowerState: state.power,
          Boot: { BootSourceOverrideEnabled: state.override.enabled, BootSourceOverrideTarget: state.override.target, 'BootSourceOverrideTarget@Redfish.AllowableValues': ['None', 'Pxe', 'Hdd', 'Cd'] },
          Actions: { '#ComputerSystem.Reset': { target: '/redfish/v1/Systems/1/Actions/ComputerSystem.Reset', 'ResetType@Redfish.AllowableValues': RESET_TYPES } },
        });
      }
      if (req.url === '/redfish/v1/Systems/1' && req.method === 'PATCH') {
        const b = (await body(req))?.Boot ?? {};
        if (b.BootSourceOverrideEnabled !== undefined) state.override.enabled = b.BootSourceOverrideEnabled;
        if (b.BootSourceOverrideTarget !== undefined) state.override.target = b.BootSourceOverrideTarget;
        return send(204);
      }
      if (req.url === '/redfish/v1/Systems/1/Actions/ComputerSystem.Reset' && req.method === 'POST') {
        const t = (await body(req))?.ResetType;
        if (!RESET_TYPES.includes(t)) return error(400, `ResetType ${t} is not supported`);
        if (t === 'On' && state.power === 'Off') {
          state.power = 'On';
          boot();
        } else if (t === 'ForceOff' || t === 'GracefulShutdown') state.power = 'Off';
        else if (t === 'ForceRestart' && state.power === 'On') boot();
        return send(204);
      }
      return error(404, `no resource ${req.url}`);
    } catch (e) {
      return error(400, (e as Error).message);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, state, close: () => new Promise((r) => server.close(() => r())) };
}
