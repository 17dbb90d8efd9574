import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { checkCa, readCaFile, type TrustedCa } from '../util/tls.js';
import { controlPlaneList } from '../util/control-planes.js';

/** What `oswalk cluster init` and `oswalk up` leave behind for later commands. */
export interface CliConfig {
  api?: string;
  token?: string;
  /**
   * The cluster CA's certificate (PEM), which the API's certificate must be signed by: in the
   * file itself rather than named, so that the file alone is enough on another machine.
   */
  caCert?: string;
  redisUrl?: string;
  /** Where the unified filesystem is mounted on this host (`oswalk up` mounts ./cluster). */
  mount?: string;
  /** The node that mount belongs to: changes made from here (a restore) are recorded as it. */
  node?: string;
  /**
   * Written by `oswalk up`: where it keeps its nodes, `<nodesDir>/<node>/state` being each one's
   * state directory. Commands that write a node's chunk store (translate, mount) find it there.
   */
  nodesDir?: string;
}

export const CONFIG_DIR = '.oswalk';
export const CONFIG_FILE = 'config.json';

/**
 * A cluster's certificates, in `<dir>/.oswalk/pki` (kubeadm's layout: ca.crt, ca.key, and the
 * API server's pair).
 */
export function pkiPaths(dir: string, server = 'control-plane'): { dir: string; ca: { cert: string; key: string }; controlPlane: { cert: string; key: string } } {
  const pki = join(dir, CONFIG_DIR, 'pki');
  return {
    dir: pki,
    ca: { cert: join(pki, 'ca.crt'), key: join(pki, 'ca.key') },
    // `server`: another server's pair under the same CA (`cluster certs --name redis`).
    controlPlane: { cert: join(pki, `${server}.crt`), key: join(pki, `${server}.key`) },
  };
}

/**
 * The user's own config, read from any directory: $XDG_CONFIG_HOME/oswalk/config.json, by
 * default ~/.config/oswalk/config.json (the XDG base directory rule, which ignores a relative
 * XDG_CONFIG_HOME).
 */
export function userConfigFile(): string {
  const xdg = process.env.XDG_CONFIG_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.config'), 'oswalk', CONFIG_FILE);
}

/** The nearest directory from dir upwards with a .oswalk/config.json: where `cluster init` or `up` ran. */
export function findClusterDir(dir = process.cwd()): string | undefined {
  for (let d = resolve(dir); ; d = dirname(d)) {
    if (existsSync(join(d, CONFIG_DIR, CONFIG_FILE))) return d;
    if (dirname(d) === d) return undefined;
  }
}

/** The nearest .oswalk/config.json from dir upwards, then the user's config. */
export function findConfigFile(dir = process.cwd()): string | undefined {
  const cluster = findClusterDir(dir);
  if (cluster) return join(cluster, CONFIG_DIR, CONFIG_FILE);
  const user = userConfigFile();
  return existsSync(user) ? user : undefined;
}

export function readConfig(file = findConfigFile()): CliConfig {
  if (!file || !existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as CliConfig;
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message} (fix or delete it)`);
  }
}

/** Write `<dir>/.oswalk/config.json`. */
export function writeConfig(dir: string, cfg: CliConfig): string {
  return writeConfigFile(join(dir, CONFIG_DIR, CONFIG_FILE), cfg);
}

/** Write a config file only its user can read: it holds the token and Redis' password. */
export function writeConfigFile(file: string, cfg: CliConfig): string {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, JSON.stringify(cfg, null, 2) + '\n', { mode: 0o600 });
  return file;
}

/**
 * The token of the environment: OSWALK_TOKEN, else the content of the file OSWALK_TOKEN_FILE
 * names (a secret in a file, as the compose cluster's `certs` service makes it in the pki volume).
 * Empty variables count as unset.
 */
export function envToken(): string | undefined {
  if (process.env.OSWALK_TOKEN) return process.env.OSWALK_TOKEN;
  const file = process.env.OSWALK_TOKEN_FILE;
  if (!file) return undefined;
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new Error(`OSWALK_TOKEN_FILE ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}: point it at a readable file holding the token, or set OSWALK_TOKEN`);
  }
  if (!token) throw new Error(`OSWALK_TOKEN_FILE ${file} is empty: write the token there, or set OSWALK_TOKEN`);
  return token;
}

/**
 * The control planes to talk to (controlPlaneList), a token and the cluster CA to trust: flags,
 * then OSWALK_API / OSWALK_TOKEN (or OSWALK_TOKEN_FILE) / OSWALK_CA_CERT, then the config file.
 */
export function resolveApi(flags: { api?: string; token?: string; caCert?: string }): { apis: string[]; token: string; ca?: TrustedCa } {
  const file = findConfigFile();
  const cfg = readConfig(file);
  // An empty variable counts as unset, as in most CLIs.
  const api = flags.api || process.env.OSWALK_API || cfg.api;
  const token = flags.token || envToken() || cfg.token;
  if (!api) throw new Error('no control plane to talk to: pass --api URL, set OSWALK_API, start one with `oswalk up`, or run from the directory where `oswalk cluster init` ran');
  if (!token) throw new Error('no API token: pass --token, set OSWALK_TOKEN, or run from the directory where `oswalk cluster init` ran');
  const ca = resolveCa(flags.caCert, cfg, file);
  return { apis: controlPlaneList(api), token, ...(ca ? { ca } : {}) };
}

/**
 * The cluster CA a client trusts for the API: --ca-cert FILE, then OSWALK_CA_CERT (a file), then
 * the config's caCert. None: the system's CAs, which an OS Walk cluster's certificate is not
 * signed by.
 */
export function resolveCa(flag: string | undefined, cfg: CliConfig, file: string | undefined): TrustedCa | undefined {
  if (flag) return readCaFile(flag, '--ca-cert');
  if (process.env.OSWALK_CA_CERT) return readCaFile(process.env.OSWALK_CA_CERT, '$OSWALK_CA_CERT');
  if (cfg.caCert && file) return { pem: checkCa(cfg.caCert, `caCert in ${file}`), source: file };
  return undefined;
}

/** Redis URL for commands that talk to Redis directly: flag, OSWALK_REDIS_URL, config. */
export function resolveRedisUrl(flag?: string): string {
  const url = flag || process.env.OSWALK_REDIS_URL || readConfig().redisUrl;
  if (!url) throw new Error('no Redis to talk to: pass --redis URL or set OSWALK_REDIS_URL');
  return withPasswordFile(url, process.env.OSWALK_REDIS_PASSWORD_FILE);
}

/**
 * The URL with the password of `file` in it (a secret mounted as a file, as compose and
 * Kubernetes hand them out, so that it is neither on a command line nor in an environment).
 */
export function withPasswordFile(url: string, file: string | undefined): string {
  if (!file) return url;
  let password: string;
  try {
    password = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new Error(`OSWALK_REDIS_PASSWORD_FILE ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!password) throw new Error(`OSWALK_REDIS_PASSWORD_FILE ${file} is empty`);
  const m = /^(rediss?|rediss?\+sentinel):\/\/(?:[^@/]*@)?(.*)$/.exec(url);
  if (!m) throw new Error(`Redis URL "${url}" must start with redis://, rediss://, redis+sentinel:// or rediss+sentinel://`);
  return `${m[1]}://:${encodeURIComponent(password)}@${m[2]}`;
}

/** Where the unified filesystem is mounted here: OSWALK_MOUNT, the config, then /cluster. */
export function localMountPath(): string {
  return resolve(process.env.OSWALK_MOUNT || readConfig().mount || '/cluster');
}
