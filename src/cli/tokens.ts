import type { Command } from 'commander';
import type { AuditEntry, TokenCreated, TokenView } from '../api/auth.js';
import type { ListAnswer } from '../api/lists.js';
import { TOKEN_ROLES, type Role } from '../api/roles.js';
import { action, client, output, parseDuration, UsageError } from './common.js';
import { formatAge, isDocumentFormat, printDocument, printRows } from './output.js';

function when(ms: number | null): string {
  return ms === null ? 'never' : new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
}

/**
 * `oswalk token create|list|revoke`: API tokens with a role each (read-only, operator, admin),
 * as `nomad acl token` makes them; `oswalk audit`: who did what with them. An admin's commands.
 */
export function register(program: Command): void {
  const token = program.command('token').description('make, list and revoke API tokens, each with a role: read-only, operator or admin, or a join token: node or control-plane (an admin\'s commands)');

  token.command('create')
    .description('make a token; its secret is printed this once and stored nowhere, so keep it (give it to its user as OSWALK_TOKEN)')
    .argument('<name>', 'what the token is called in `token list` and the audit log, e.g. ci or alice')
    .requiredOption('--role <role>', `what it may do: ${TOKEN_ROLES.join(', ')} (read-only looks: status, get, logs, versions; operator also runs, applies, deletes, cancels, drains and restores; admin also manages tokens, removes nodes and reads the audit log; node is a join token: an agent joins with it (oswalk agent --token), and it can do nothing else; control-plane is a join token for another control plane (oswalk control-plane --join), which it hands Redis\' password and the CA\'s key: keep it short-lived (--ttl) and revoke it once used)`)
    .option('--ttl <duration>', 'how long it is valid, e.g. 12h or 30d (default: until revoked)')
    .action(action(async (name: string, opts: { role: string; ttl?: string }, cmd: Command) => {
      const out = output(cmd, { names: true });
      if (!(TOKEN_ROLES as readonly string[]).includes(opts.role)) throw new UsageError(`--role "${opts.role}": use one of ${TOKEN_ROLES.join(', ')}`);
      const ttlMs = opts.ttl === undefined ? undefined : parseDuration(opts.ttl);
      if (ttlMs !== undefined && ttlMs < 1000) throw new UsageError(`--ttl ${opts.ttl}: a token must live at least 1s`);
      const made = await client(cmd).post<TokenCreated>('/v1/tokens', { name, role: opts.role as Role, ...(ttlMs ? { ttlMs } : {}) });
      if (isDocumentFormat(out)) return printDocument(out, made);
      if (out === 'name') return void process.stdout.write(`token/${made.name}\n`);
      process.stdout.write([
        `token/${made.name} created: ${made.role}, expires ${when(made.expiresAt)}`,
        `Secret (shown this once): ${made.secret}`,
        '',
      ].join('\n'));
    }));

  token.command('list')
    .description('list the tokens that are valid (expired and revoked ones are gone); never their secrets')
    .action(action(async (_opts: unknown, cmd: Command) => {
      const out = output(cmd, { names: true });
      const { items } = await client(cmd).get<ListAnswer<TokenView>>('/v1/tokens');
      printRows(out, items, [
        { header: 'NAME', value: (t) => t.name },
        { header: 'ROLE', value: (t) => t.role },
        { header: 'AGE', value: (t) => formatAge(Date.now() - t.createdAt), ticks: true },
        { header: 'EXPIRES', value: (t) => when(t.expiresAt) },
        { header: 'CREATED BY', value: (t) => t.createdBy },
      ], { name: (t) => `token/${t.name}`, empty: 'No tokens but the cluster token (oswalk token create makes one).' });
    }));

  token.command('revoke')
    .description('revoke tokens: their next request is refused')
    .argument('<names...>', 'token names')
    .action(action(async (names: string[], _opts: unknown, cmd: Command) => {
      output(cmd, { names: true });
      const api = client(cmd);
      for (const n of names) {
        await api.delete(`/v1/tokens/${encodeURIComponent(n)}`);
        process.stdout.write(`token/${n} revoked\n`);
      }
    }));

  program.command('audit')
    .description('show the audit log, newest first: every change made through the API and every request refused, with the name of the token that made it')
    .option('--limit <n>', 'how many entries', '50')
    .action(action(async (opts: { limit: string }, cmd: Command) => {
      const out = output(cmd);
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError(`--limit ${opts.limit}: a whole number from 1 to 10000`);
      const { items } = await client(cmd).get<ListAnswer<AuditEntry>>(`/v1/audit?limit=${limit}`);
      printRows(out, items, [
        { header: 'TIME', value: (e) => when(e.at) },
        { header: 'TOKEN', value: (e) => e.token || '(none valid)' },
        { header: 'ROLE', value: (e) => e.role || '-' },
        { header: 'REQUEST', value: (e) => `${e.method} ${e.path}` },
        { header: 'STATUS', value: (e) => e.status },
        { header: 'FROM', value: (e) => e.from },
      ], { empty: 'The audit log is empty.' });
    }));
}
