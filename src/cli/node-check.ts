import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Redis } from '../state/redis.js';
import type { Keyspace } from '../state/keys.js';
import { DEFAULT_STATE_DIR, stateDirAgent } from '../agent/state-lock.js';
import { UsageError } from './common.js';
import { readConfig } from './config.js';

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

/**
 * The state directory of `node` on this host, for a command given none that writes the node's
 * chunk store (translate, mount). Chunks stored anywhere else are on no agent's chunk server,
 * so the other nodes would list the files and read them as EIO: rather than guess, this is the
 * node's directory of the `oswalk up` cluster the config names, else the agents' default state
 * directory if the agent running with it is that node, else a usage error naming the node and
 * saying what to pass instead (`pass`: the option, e.g. `--state-dir with its state directory`).
 */
export function nodeStateDir(node: string, pass: string): string {
  const { nodesDir } = readConfig();
  if (nodesDir) {
    const nodes = existsSync(nodesDir) ? readdirSync(nodesDir).sort() : [];
    if (nodes.includes(node)) return join(nodesDir, node, 'state');
    throw new UsageError(`node "${node}" is not a node of the oswalk up cluster in ${dirname(dirname(nodesDir))} (its nodes: ${nodes.join(', ') || 'none'}): ` +
      `pass --node with one of them, or ${pass}`);
  }
  const running = stateDirAgent(DEFAULT_STATE_DIR);
  if (running === node) return DEFAULT_STATE_DIR;
  throw new UsageError(`where node "${node}" keeps its chunks is not known here (no oswalk up cluster is configured, and ${running ? `the agent using ${DEFAULT_STATE_DIR} is node ${running}'s` : `no agent is running with ${DEFAULT_STATE_DIR}`}): ` +
    `pass ${pass}`);
}
