import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Type } from 'typebox';
import { countJobsByState } from '../../state/job-counts.js';
import { leaderHolder } from '../../state/leader.js';
import { listNodes } from '../../state/nodes.js';
import { storageHealth } from '../../packetfs/index.js';
import type { ClusterState } from '../../api/status.js';
import { cookieValue, SESSION_COOKIE, type Caller, type HttpServer } from '../../util/http.js';
import { findSession } from '../../state/sessions.js';
import { packageRoot } from '../../util/paths.js';
import type { ControlPlaneContext } from '../context.js';

/** How often the live stream sends the cluster's state: the pages show a change within 2 s. */
export const EVENTS_EVERY_MS = 1000;

/**
 * Only this page's own files, scripts and connections: nothing inline, so a name or a log line
 * that smuggles HTML in has no script to run even if it were ever put into the page as HTML.
 */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

interface Asset { body: Buffer; type: string; version: string }

/** The dashboard's files (src/dashboard/), read once; each named in the page with its hash, so it can be cached for good. */
function loadAssets(): Map<string, Asset> {
  const dir = join(packageRoot(), 'src', 'dashboard');
  const assets = new Map<string, Asset>();
  for (const [file, type] of [['app.js', 'text/javascript; charset=utf-8'], ['app.css', 'text/css; charset=utf-8']] as const) {
    const body = readFileSync(join(dir, file));
    assets.set(file, { body, type, version: createHash('sha256').update(body).digest('hex').slice(0, 12) });
  }
  return assets;
}

/**
 * The web dashboard at `/` on the API's port: one page (src/dashboard/) that uses the same /v1
 * API as the CLI, logged in with a session cookie (routes/session.ts), and kept live by
 * GET /v1/events, a server-sent event stream of the cluster's state that the browser reconnects
 * by itself (to whichever control plane answers) when it breaks.
 */
export async function dashboardRoutes(app: HttpServer, { ctx, authenticate }: { ctx: ControlPlaneContext; authenticate: (token: string) => Promise<Caller | undefined> }): Promise<void> {
  const assets = loadAssets();
  const page = readFileSync(join(packageRoot(), 'src', 'dashboard', 'index.html'), 'utf8')
    .replace(/\{\{(app\.js|app\.css)\}\}/g, (_, f: string) => `/ui/${f}?v=${assets.get(f)!.version}`);

  app.get('/', { config: { public: true } }, async (_req, reply) => {
    reply.header('content-security-policy', CSP);
    reply.header('cache-control', 'no-cache');
    return reply.type('text/html; charset=utf-8').send(page);
  });

  app.get('/ui/:file', {
    config: { public: true },
    schema: { params: Type.Object({ file: Type.String({ maxLength: 64 }) }) },
  }, async (req, reply) => {
    const a = assets.get(req.params.file);
    if (!a) return reply.code(404).send({ error: 'Not Found', code: 'NotFound', message: `no dashboard file ${req.params.file}` });
    // The page names each file with its hash: a new build is a new URL.
    reply.header('cache-control', 'public, max-age=31536000, immutable');
    reply.header('etag', `"${a.version}"`);
    return reply.type(a.type).send(a.body);
  });

  app.get('/v1/events', async (req, reply) => {
    // A stream ends with what let it open: the session cookie's session (log out, its token
    // revoked) or the bearer token (revoked, expired). Checked each tick, so an open page or
    // client stops getting the cluster's state within a tick.
    const header = req.headers.authorization;
    const bearer = header?.startsWith('Bearer ') ? header.slice(7) : undefined;
    const sessionId = header === undefined ? cookieValue(req.headers.cookie, SESSION_COOKIE) : undefined;
    const allowed = async () => (bearer !== undefined ? !!(await authenticate(bearer)) : sessionId === undefined || !!(await findSession(ctx.redis, ctx.ks, sessionId)));
    const out = new PassThrough();
    let closed = false;
    reply.raw.on('close', () => {
      closed = true;
      out.end();
    });
    const tick = async () => {
      const [nodes, jobs, storage, leader] = await Promise.all([
        listNodes(ctx.redis, ctx.ks), countJobsByState(ctx.redis, ctx.ks), storageHealth(ctx.fs.redis, ctx.fs.ks), leaderHolder(ctx.redis, ctx.ks),
      ]);
      const state: ClusterState = { at: Date.now(), nodes, jobs, ...(storage ? { storage } : {}), ...(leader ? { leader } : {}) };
      if (!closed) out.write(`event: cluster\ndata: ${JSON.stringify(state)}\n\n`);
    };
    void (async () => {
      // How long the browser waits before it connects again after a break.
      out.write('retry: 1000\n\n');
      while (!closed) {
        try {
          if (!(await allowed())) {
            closed = true;
            out.end();
            break;
          }
          await tick();
        } catch (err) {
          // Redis away for a moment: the stream stays, the next tick tries again.
          req.log.warn({ err: (err as Error).message }, 'dashboard events: the cluster could not be read');
        }
        await new Promise((r) => setTimeout(r, EVENTS_EVERY_MS));
      }
    })();
    return reply.header('cache-control', 'no-store').type('text/event-stream; charset=utf-8').send(out);
  });
}
