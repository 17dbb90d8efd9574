import type { Command } from 'commander';
import type { RevokeCertAnswer } from '../api/nodes.js';
import type { ApiClient } from './client.js';
import { action, client, output as outputOf } from './common.js';
import { isDocumentFormat, printRows } from './output.js';

/** Revokes every certificate the control plane issued `name` (POST /v1/nodes/:name/revoke-cert). */
export function postCertRevocation(api: ApiClient, name: string): Promise<RevokeCertAnswer> {
  return api.post<RevokeCertAnswer>(`/v1/nodes/${encodeURIComponent(name)}/revoke-cert`);
}

/** What a revocation means for the node, in words: what refuses it, and how it gets back in. */
export function revocationNote(name: string, a: RevokeCertAnswer): string {
  if (!a.revoked.length) return `node ${name} holds no unexpired certificate this cluster issued: nothing was revoked`;
  return `node ${name}: ${a.revoked.length === 1 ? 'its certificate is' : `its ${a.revoked.length} certificates are`} refused from now on by the control plane, and within about a second by every node's chunk server. ` +
    'The node gets a new one only by joining again (restart its agent); revoke the join token it joined with (oswalk token revoke NAME) to keep it out.';
}

/**
 * `oswalk node revoke-cert NODE`: revoke the node's certificates before their end, as Docker
 * Swarm's `docker node rm` does, for a node that stays registered (a key that leaked, a
 * machine that was lost): `node remove` revokes them itself once the node can be stopped.
 */
export function register(node: Command): void {
  node.command('revoke-cert')
    .description('revoke every certificate the cluster issued a node: refused at once by the control plane, within a second by every node')
    .argument('<node>', 'node name (oswalk get nodes lists them)')
    .addHelpText('after', `
Every certificate the control plane issued the node and that has not expired is put on the
cluster's revocation list: the control plane refuses it at once (its renewal included), every
agent's chunk server within about a second (each polls the list every second), even on a
connection opened before. The node keeps its record and its jobs; its agent logs that its
certificate was revoked, and can fetch nothing from its peers until it joins again for a new key
and certificate (restart it). A node that must stay out also needs the join token it joined
with revoked (oswalk token revoke NAME).

\`oswalk node remove NODE\` revokes the node's certificates itself when it reports that the
node's agent can be stopped.

Prints the certificates revoked (SERIAL, EXPIRES); -o json prints {name, revokedAt, revoked:
[{serial, notAfter}]}. Needs an admin's token.`)
    .action(action(async (name: string, _opts: unknown, cmd: Command) => {
      const output = outputOf(cmd, { names: true });
      const answer = await postCertRevocation(client(cmd), name);
      printRows(output, answer.revoked, [
        { header: 'NODE', value: () => name },
        { header: 'SERIAL', value: (c) => c.serial },
        { header: 'EXPIRES', value: (c) => new Date(c.notAfter).toISOString() },
      ], { json: answer, name: (c) => `certificate/${c.serial}`, empty: revocationNote(name, answer) });
      if (answer.revoked.length && !isDocumentFormat(output) && output !== 'name') process.stderr.write(`${revocationNote(name, answer)}\n`);
    }));
}
