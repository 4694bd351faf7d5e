/**
 * BitTorrent routes (issue 13), behind the deploy-token hook (auth.ts): only the holder of a
 * deploy token gets a torrent, and only for a layer of that deployment's image; the tracker
 * admits an announce only for a torrent of that image, so a swarm is exactly the nodes of one
 * image's deployments. aria2 sends the token (Authorization header, from its 0600 config file)
 * on tracker and web-seed requests alike.
 *
 * An announce endpoint in the server rather than opentracker: opentracker has no notion of a
 * deploy token (its whitelist is of info-hashes, so any host that learns a hash could join), it
 * would be one more daemon to run and keep in step with the deployments, and the server must
 * answer "does every node of the swarm have the layer?" (the installer's --seed-wait), which is
 * the tracker's own knowledge.
 */
import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { bencode } from '../../common/bencode.js';
import { FerryError, ValidationError } from '../../common/errors.js';
import { blobPath, DIGEST_RE, TORRENT_ROUTES, type LayerTorrentAnswer } from '../../common/protocol.js';
import { deploymentUsesBlob, swarmMembers, type DeploymentRow } from '../db/deployments.js';
import { TorrentCache, torrentFile } from '../torrent/torrent.js';
import { ANNOUNCE_INTERVAL_S, compactPeers, parseAnnounce, Swarms } from '../torrent/swarm.js';
import { ServerSeeders } from '../torrent/seeder.js';
import { sendJson } from './http.js';
import { deploymentOf } from './auth.js';
import { mountRaw, onlyMethods, type Resource, type ServerContext } from './route.js';

interface TorrentState {
  cache: TorrentCache;
  swarms: Swarms;
  seeders: ServerSeeders;
}
const states = new WeakMap<object, TorrentState>();
/** The torrents and swarms of one server (one data dir). */
export function torrentState(ctx: ServerContext): TorrentState {
  let s = states.get(ctx.data);
  if (!s) states.set(ctx.data, (s = { cache: new TorrentCache(), swarms: new Swarms(), seeders: new ServerSeeders({ enabled: ctx.torrentSeed !== false, uploadRate: ctx.torrentSeedRate }) }));
  return s;
}

/** Stop the server's layer seeders (the server is closing). */
export async function closeTorrents(data: object): Promise<void> {
  await states.get(data)?.seeders.close();
}

const imageOf = (row: DeploymentRow): string => `${row.image_name}@${row.image_version}`;

function layerParam(url: URL, row: DeploymentRow): string {
  const v = url.searchParams.get('layer') ?? '';
  if (!DIGEST_RE.test(v)) throw new ValidationError('FERRY_E_BAD_REQUEST', 'the torrent request', [{ severity: 'error', code: 'FERRY_E_BAD_REQUEST', path: 'layer', message: 'must be a layer digest (sha256:<64 hex>)' }]);
  if (!deploymentUsesBlob(row, v)) throw new FerryError('FERRY_E_FORBIDDEN', `deployment ${row.id}'s image does not use layer ${v}`, { hint: 'a deploy token gets only the torrents of its own image\'s layers' });
  return v;
}

async function torrentOf(ctx: ServerContext, digest: string) {
  const file = ctx.data.blobs.path(digest);
  if (!existsSync(file)) throw new FerryError('FERRY_E_BLOB_MISSING', `blob ${digest} is not in the store`, { hint: 'run `ferry image verify` on the server' });
  return torrentState(ctx).cache.get(file, digest);
}

function sendBencode(res: ServerResponse, v: Parameters<typeof bencode>[0]): void {
  const body = bencode(v);
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length, 'cache-control': 'no-store' });
  res.end(body);
}

async function announce(ctx: ServerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const row = deploymentOf(req);
  const raw = req.url ?? '';
  const q = raw.indexOf('?');
  let a;
  try {
    a = parseAnnounce(q < 0 ? '' : raw.slice(q + 1), req.socket.remoteAddress ?? '', row.id);
  } catch (e) {
    // A tracker answers in bencode, also when it refuses (BEP 3 "failure reason").
    sendBencode(res, { 'failure reason': (e as Error).message });
    return;
  }
  const st = torrentState(ctx);
  const digest = st.cache.digestOf(a.infoHash);
  if (!digest || !deploymentUsesBlob(row, digest)) {
    sendBencode(res, { 'failure reason': `info-hash ${a.infoHash} is not a layer of deployment ${row.id}'s image` });
    return;
  }
  try {
    const r = st.swarms.announce(imageOf(row), digest, a);
    // The server's own seeder is a peer of every leecher, at the address the node reached it by.
    const seedPort = a.left > 0 ? await st.seeders.running(digest) : undefined;
    const local = req.socket.localAddress;
    const peers = seedPort && local ? [{ ip: local, port: seedPort }, ...r.peers] : r.peers;
    sendBencode(res, { interval: ANNOUNCE_INTERVAL_S, 'min interval': ANNOUNCE_INTERVAL_S, complete: r.complete, incomplete: r.incomplete, peers: compactPeers(peers) });
  } catch (e) {
    sendBencode(res, { 'failure reason': (e as Error).message });
  }
}

export const torrent: Resource = (app, ctx) => {
  mountRaw(app, ctx, { method: 'GET', url: TORRENT_ROUTES.torrent, auth: 'deploy' }, async (c, req, res) => {
    const row = deploymentOf(req);
    const digest = layerParam(new URL(req.url ?? '/', 'http://ferry.invalid'), row);
    const t = await torrentOf(c, digest);
    const base = c.publicUrl;
    // The seeding policy (server/torrent/seeder.ts): the server seeds as a peer and the torrent
    // has no web seed, so nodes take distinct pieces from it and trade; without a seeder, the web seed.
    const seeding = await torrentState(c).seeders.port(t, c.data.blobs.path(digest));
    const webSeeds = seeding ? [] : [base + blobPath(digest)];
    const answer: LayerTorrentAnswer = { layer: digest, infoHash: t.infoHash, pieceLength: t.pieceLength, torrent: torrentFile(t, base + TORRENT_ROUTES.announce, webSeeds).toString('base64') };
    sendJson(res, 200, answer);
  });
  onlyMethods(app, TORRENT_ROUTES.torrent, ['GET'], 'deploy');
  mountRaw(app, ctx, { method: 'GET', url: TORRENT_ROUTES.announce, auth: 'deploy' }, announce);
  onlyMethods(app, TORRENT_ROUTES.announce, ['GET'], 'deploy');
  mountRaw(app, ctx, { method: 'GET', url: TORRENT_ROUTES.swarm, auth: 'deploy' }, async (c, req, res) => {
    const row = deploymentOf(req);
    const digest = layerParam(new URL(req.url ?? '/', 'http://ferry.invalid'), row);
    const t = await torrentOf(c, digest);
    sendJson(res, 200, torrentState(c).swarms.state(imageOf(row), digest, t.infoHash, swarmMembers(c.data, row, digest)));
  });
  onlyMethods(app, TORRENT_ROUTES.swarm, ['GET'], 'deploy');
};
