import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ControlPlaneJoinAnswer, ControlPlaneJoinRequest } from '../api/control-planes.js';
import type { KeyPairFiles } from '../util/pki.js';
import type { TrustedCa } from '../util/tls.js';
import { apiClient } from './client.js';
import { UsageError } from './common.js';

/**
 * A control plane that joined the cluster through another (`oswalk control-plane --join`) keeps
 * what it was given in its state directory, every file 0600 in 0700 directories, so that a
 * restart needs neither the join token nor the other control plane: the CA and its own
 * certificate in pki/ (the layout `oswalk cluster init` makes), the rest in cluster.json.
 */
export const DEFAULT_CONTROL_PLANE_STATE_DIR = '/var/lib/oswalk/control-plane';

/** cluster.json: secrets (Redis' password in the URL, the cluster token), never on a command line. */
export interface JoinedState {
  /** The control plane it joined through, for a person reading the file. */
  joinedFrom: string;
  redisUrl: string;
  prefix: string;
  /** The Redis of the cluster's files, when they have one of their own. */
  fsRedisUrl?: string;
  token: string;
  nodeTimeoutMs: number;
  nodeCertLifetimeMs: number;
  defaultImage?: string;
}

export function joinedFiles(stateDir: string): { state: string; ca: KeyPairFiles; controlPlane: KeyPairFiles } {
  const pki = join(stateDir, 'pki');
  return {
    state: join(stateDir, 'cluster.json'),
    ca: { cert: join(pki, 'ca.crt'), key: join(pki, 'ca.key') },
    controlPlane: { cert: join(pki, 'control-plane.crt'), key: join(pki, 'control-plane.key') },
  };
}

/** What an earlier join left in stateDir, or undefined when it never joined. */
export function readJoinedState(stateDir: string): JoinedState | undefined {
  const file = joinedFiles(stateDir).state;
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as JoinedState;
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message}: join again (oswalk control-plane --join URL with a control-plane join token)`);
  }
}

/**
 * Joins through the control plane at `url`, trusting `ca` alone (found from `caCertFlag`), with a join token of role
 * control-plane: sends a request for a certificate for `hosts` (the key stays here) and writes
 * what comes back into stateDir.
 */
export async function joinControlPlane(o: { url: string; token: string | undefined; ca: TrustedCa | undefined; caCertFlag?: string; hosts: string[]; stateDir: string }): Promise<JoinedState> {
  if (!/^https:\/\//.test(o.url)) throw new UsageError(`--join ${o.url}: the answer holds Redis' password and the CA's key, so it is asked for over https:// only`);
  if (!o.ca) throw new UsageError(`--join needs the cluster CA to check ${o.url} against before the token is sent: pass --ca-cert FILE (the cluster's ca.crt) or set OSWALK_CA_CERT`);
  if (!o.token) throw new UsageError('--join needs a join token of role control-plane (an admin makes one with `oswalk token create NAME --role control-plane`): set OSWALK_TOKEN or OSWALK_TOKEN_FILE (or --token, which any local user can read)');
  if (!o.hosts.length) throw new UsageError('--join needs the names or addresses agents and the CLI will reach this control plane at, for its certificate: pass --san NAMES, or --listen with an address other than 0.0.0.0');
  const { nodeCertificateRequest, writePrivate } = await import('../util/pki.js');
  const request = await nodeCertificateRequest('OS Walk control plane');
  // The client finds the same CA as resolveCa did (the flag, OSWALK_CA_CERT, the config).
  const answer = await apiClient({ api: o.url, token: o.token, ...(o.caCertFlag ? { caCert: o.caCertFlag } : {}) }).post<ControlPlaneJoinAnswer>('/v1/control-planes/join', { csr: request.csr, hosts: o.hosts } satisfies ControlPlaneJoinRequest);
  mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
  const files = joinedFiles(o.stateDir);
  const state: JoinedState = {
    joinedFrom: o.url, redisUrl: answer.redisUrl, ...(answer.fsRedisUrl ? { fsRedisUrl: answer.fsRedisUrl } : {}), prefix: answer.prefix, token: answer.clusterToken,
    nodeTimeoutMs: answer.nodeTimeoutMs, nodeCertLifetimeMs: answer.nodeCertLifetimeMs, ...(answer.defaultImage ? { defaultImage: answer.defaultImage } : {}),
  };
  // The CA's key before its certificate, and a certificate's key before it: a certificate on
  // disk always has its key beside it.
  writePrivate(files.ca.key, answer.caKey);
  writePrivate(files.ca.cert, answer.caCert.trimEnd() + '\n');
  writePrivate(files.controlPlane.key, request.key);
  writePrivate(files.controlPlane.cert, answer.certificate);
  writePrivate(files.state, JSON.stringify(state, null, 2) + '\n');
  return state;
}
