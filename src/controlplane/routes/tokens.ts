import { Type } from 'typebox';
import { AuditEntry, TokenCreateRequest, TokenCreated, TokenName, TokenView } from '../../api/auth.js';
import { ListOf } from '../../api/lists.js';
import { CLUSTER_TOKEN_NAME } from '../../api/roles.js';
import { HttpError, type HttpServer } from '../../util/http.js';
import { createToken, listTokens, readAudit, revokeToken, TokenExistsError } from '../../state/tokens.js';
import type { ControlPlaneContext } from '../context.js';

/** Tokens (create, list, revoke) and the audit log: an admin's. */
export async function tokenRoutes(app: HttpServer, { ctx }: { ctx: ControlPlaneContext }): Promise<void> {
  const admin = { role: 'admin' as const };

  app.post('/v1/tokens', { config: admin, schema: { body: TokenCreateRequest, response: { 201: TokenCreated } } }, async (req, reply) => {
    if (req.body.name === CLUSTER_TOKEN_NAME) throw new HttpError(409, `"${CLUSTER_TOKEN_NAME}" is the cluster token's name in the audit log: pick another`, 'Conflict');
    try {
      const made = await createToken(ctx.redis, ctx.ks, { ...req.body, createdBy: req.caller!.name });
      req.log.info({ token: made.name, role: made.role, by: made.createdBy }, 'token created');
      return reply.code(201).send(made);
    } catch (err) {
      if (err instanceof TokenExistsError) throw new HttpError(409, err.message, 'Conflict');
      throw err;
    }
  });

  app.get('/v1/tokens', { config: admin, schema: { response: { 200: ListOf(TokenView) } } }, async () => ({
    items: await listTokens(ctx.redis, ctx.ks),
  }));

  app.delete('/v1/tokens/:name', { config: admin, schema: { params: Type.Object({ name: TokenName }) } }, async (req) => {
    if (!(await revokeToken(ctx.redis, ctx.ks, req.params.name))) {
      throw new HttpError(404, `no token named "${req.params.name}" (oswalk token list shows them; the cluster token is changed by restarting the control plane with another)`, 'NotFound');
    }
    req.log.info({ token: req.params.name, by: req.caller!.name }, 'token revoked');
    return { name: req.params.name, revoked: true };
  });

  app.get('/v1/audit', {
    config: admin,
    schema: {
      querystring: Type.Object({
        limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
        before: Type.Optional(Type.String({ pattern: '^[0-9]+-[0-9]+$' })),
      }),
      response: { 200: ListOf(AuditEntry) },
    },
  }, async (req) => ({ items: await readAudit(ctx.redis, ctx.ks, req.query.limit, req.query.before) }));
}
