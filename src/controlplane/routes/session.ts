import { CLUSTER_TOKEN_NAME } from '../../api/roles.js';
import { LoginAnswerSchema, LoginRequestSchema, SessionAnswerSchema } from '../../api/session.js';
import { createSession, endSession, findSession } from '../../state/sessions.js';
import { cookieValue, HttpError, requestOrigin, SESSION_COOKIE, type Caller, type HttpServer } from '../../util/http.js';
import type { ControlPlaneContext } from '../context.js';

/** How long a dashboard session lasts: a working day, as Portainer's does by default. */
export const SESSION_TTL_MS = 8 * 3600_000;

/** The Set-Cookie value of a session: never readable by the page's scripts, never sent cross-site. */
function sessionCookie(value: string, maxAgeS: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${secure ? '; Secure' : ''}`;
}

/**
 * Logging in to the dashboard: the token goes once, in the body of a POST from the page itself,
 * and comes back as a session cookie (src/state/sessions.ts); logging out ends the session.
 */
export async function sessionRoutes(app: HttpServer, { ctx, authenticate }: { ctx: ControlPlaneContext; authenticate: (token: string) => Promise<Caller | undefined> }): Promise<void> {
  app.post('/v1/session', {
    config: { public: true },
    schema: {
      body: LoginRequestSchema,
      response: { 200: LoginAnswerSchema },
    },
  }, async (req, reply) => {
    // Logging in from another site's page would put its session in this browser.
    if (req.headers.origin !== undefined && req.headers.origin !== requestOrigin(req)) {
      throw new HttpError(403, `log in from the dashboard's own page (${requestOrigin(req)})`, 'Forbidden');
    }
    const caller = await authenticate(req.body.token);
    if (!caller) throw new HttpError(401, 'that token is unknown, revoked or expired', 'Unauthorized');
    req.caller = caller;
    // No user token may take the cluster token's name (routes/tokens.ts): a user token's session ends with it.
    const userToken = caller.name === CLUSTER_TOKEN_NAME ? undefined : req.body.token;
    const id = await createSession(ctx.redis, ctx.ks, caller, userToken, SESSION_TTL_MS);
    reply.header('set-cookie', sessionCookie(id, SESSION_TTL_MS / 1000, req.protocol === 'https'));
    reply.header('cache-control', 'no-store');
    return { name: caller.name, role: caller.role };
  });

  // Who the page is logged in as, if anyone: 200 either way, so a page opened without a session
  // (which then shows the login form) logs no failed request in the browser's console.
  app.get('/v1/session', {
    config: { public: true },
    schema: { response: { 200: SessionAnswerSchema } },
  }, async (req, reply) => {
    reply.header('cache-control', 'no-store');
    const id = cookieValue(req.headers.cookie, SESSION_COOKIE);
    const s = id ? await findSession(ctx.redis, ctx.ks, id) : undefined;
    return s ? { loggedIn: true, name: s.name, role: s.role } : { loggedIn: false };
  });

  // Public: a session that already expired still clears its cookie.
  app.delete('/v1/session', { config: { public: true } }, async (req, reply) => {
    const id = cookieValue(req.headers.cookie, SESSION_COOKIE);
    if (id) await endSession(ctx.redis, ctx.ks, id);
    reply.header('set-cookie', sessionCookie('', 0, req.protocol === 'https'));
    return reply.code(204).send();
  });
}
