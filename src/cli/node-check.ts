import type { Redis } from 'ioredis';
import type { Keyspace } from '../state/keys.js';

/**
 * `oswalk mount` and `oswalk translate` store chunks as `node`, and other nodes fetch them from
 * the agent of that name. When no agent of that name has joined (the default is the host
 * name), what they store reads as EIO everywhere else: say so, and what to pass instead. A
 * warning, not a refusal: that agent may join later.
 */
export async function warnIfNotANode(redis: Redis, ks: Keyspace, node: string, what: string): Promise<void> {
  const { listNodes } = await import('../state/nodes.js');
  const names = (await listNodes(redis, ks)).map((n) => n.name);
  if (names.includes(node)) return;
  process.stderr.write(`warning: no agent named "${node}" has joined this cluster (${names.length ? `its nodes: ${names.join(', ')}` : 'it has no nodes yet'}): ` +
    `${what} can be read on this machine only until one does. Pass --node with the name of the agent on this machine (and its state directory).\n`);
}
