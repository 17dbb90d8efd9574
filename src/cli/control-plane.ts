import { existsSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { DEFAULT_PREFIX } from '../state/keys.js';
import { loadServerTls, type ServerTls } from '../util/tls.js';
import type { ClusterCa, KeyPairFiles } from '../util/pki.js';
import { action, fsRedisOption, parseDuration, parseListen, untilSignal, UsageError } from './common.js';
import { hostList } from './certs.js';
import { envToken, findClusterDir, findConfigFile, pkiPaths, readConfig, resolveCa, resolveRedisUrl } from './config.js';
import { DEFAULT_CONTROL_PLANE_STATE_DIR, joinControlPlane, joinedFiles, readJoinedState, type JoinedState } from './control-plane-join.js';

interface ControlPlaneFlags {
  redis?: string;
  agentRedis?: string;
  fsRedis?: string;
  agentFsRedis?: string;
  listen: string;
  tlsCert?: string;
  tlsKey?: string;
  insecureHttp?: boolean;
  nodeTimeout: string;
  prefix: string;
  caKey?: string;
  nodeCertTtl: string;
  defaultImage?: string;
  join?: string;
  san: string;
  stateDir: string;
  dashboard: boolean;
}

/**
 * The certificate and key to serve the API with, and their files (where a renewal goes): the
 * flags, else the pair `oswalk cluster init` made in the nearest .oswalk/pki. Never plain HTTP
 * by default: that takes --insecure-http.
 */
function apiTls(opts: ControlPlaneFlags): { tls: ServerTls; files: KeyPairFiles } | 'insecure-http' {
  if (opts.insecureHttp) {
    if (opts.tlsCert || opts.tlsKey) throw new UsageError('--insecure-http serves plain HTTP: it takes no --tls-cert or --tls-key');
    return 'insecure-http';
  }
  if (!opts.tlsCert !== !opts.tlsKey) throw new UsageError(`--${opts.tlsCert ? 'tls-key' : 'tls-cert'} is missing: a certificate is served with its key`);
  if (opts.tlsCert && opts.tlsKey) return { tls: loadServerTls(opts.tlsCert, opts.tlsKey), files: { cert: opts.tlsCert, key: opts.tlsKey } };
  const dir = findClusterDir();
  const found = dir ? pkiPaths(dir).controlPlane : undefined;
  if (found && existsSync(found.cert)) return { tls: loadServerTls(found.cert, found.key), files: found };
  throw new UsageError('no certificate to serve the API with: run `oswalk cluster init` first and start the control plane where it ran (it finds .oswalk/pki), pass --tls-cert FILE --tls-key FILE, or pass --insecure-http to serve plain HTTP, the token then crossing the network in clear text');
}

/**
 * The cluster CA the control plane signs node certificates with: --ca-key (and --ca-cert),
 * else the pair `oswalk cluster init` made in the nearest .oswalk/pki, else none.
 */
async function signingCa(opts: ControlPlaneFlags, caCert: string | undefined): Promise<ClusterCa | undefined> {
  const { loadCaIfPresent } = await import('../util/pki.js');
  if (opts.caKey) {
    if (!caCert) throw new UsageError('--ca-key needs the CA\'s certificate too: pass --ca-cert FILE (or set OSWALK_CA_CERT)');
    for (const f of [opts.caKey, caCert]) if (!existsSync(f)) throw new UsageError(`${f} does not exist`);
    return loadCaIfPresent({ cert: caCert, key: opts.caKey });
  }
  const dir = findClusterDir();
  return dir ? loadCaIfPresent(pkiPaths(dir).ca) : undefined;
}

/** Flags a joined control plane takes from its state directory instead: given too, one would contradict the other. */
const JOINED_GIVES = ['redis', 'agentRedis', 'fsRedis', 'agentFsRedis', 'tlsCert', 'tlsKey', 'insecureHttp', 'caKey'] as const;

/** The names its certificate is for: --san's, and --listen's host unless it is every address. */
function joinHosts(opts: ControlPlaneFlags, host: string): string[] {
  const listened = ['0.0.0.0', '::', ''].includes(host) ? [] : [host];
  return [...new Set([...hostList(opts.san), ...listened])];
}

/** Runs a control plane from what a join left in its state directory. */
async function startJoined(opts: ControlPlaneFlags, state: JoinedState, listen: { host: string; port: number }): Promise<{ close(): Promise<void> }> {
  const { startControlPlane } = await import('../controlplane/index.js');
  const { loadCaIfPresent } = await import('../util/pki.js');
  const files = joinedFiles(opts.stateDir);
  const ca = await loadCaIfPresent(files.ca);
  if (!ca) throw new Error(`${files.ca.cert} or ${files.ca.key} is missing: join again (oswalk control-plane --join URL with a control-plane join token)`);
  return startControlPlane({
    redisUrl: state.redisUrl, ...(state.fsRedisUrl ? { fsRedisUrl: state.fsRedisUrl } : {}), token: state.token, ...listen,
    tls: loadServerTls(files.controlPlane.cert, files.controlPlane.key), tlsFiles: files.controlPlane,
    ca, nodeCertLifetimeMs: state.nodeCertLifetimeMs, prefix: state.prefix, nodeTimeoutMs: state.nodeTimeoutMs, dashboard: opts.dashboard,
    ...(opts.defaultImage ?? state.defaultImage ? { defaultImage: opts.defaultImage ?? state.defaultImage } : {}),
  });
}

export function register(program: Command): void {
  program.command('control-plane')
    .description('run a control plane: the REST API (HTTPS), the scheduler and the node monitor (several may run; one leads)')
    // From the environment rather than the command line, which any local user can read: the URL
    // may carry Redis' password.
    .addOption(new Option('--redis <url>', 'Redis URL (with a password, set the variable instead: any local user can read a command line)').env('OSWALK_REDIS_URL'))
    .addOption(new Option('--agent-redis <url>', 'Redis URL handed to agents when it differs from --redis (e.g. a service name)').env('OSWALK_AGENT_REDIS_URL'))
    .addOption(fsRedisOption())
    .addOption(new Option('--agent-fs-redis <url>', 'the same handed to agents when it differs from --fs-redis').env('OSWALK_AGENT_FS_REDIS_URL'))
    .option('--listen <host:port>', 'address to serve the API on', '127.0.0.1:7000')
    .addOption(new Option('--tls-cert <file>', 'certificate to serve the API with, signed by the cluster CA (default: .oswalk/pki/control-plane.crt where `oswalk cluster init` ran)').env('OSWALK_TLS_CERT'))
    .addOption(new Option('--tls-key <file>', 'its private key (default: .oswalk/pki/control-plane.key)').env('OSWALK_TLS_KEY'))
    .option('--insecure-http', 'INSECURE: serve plain HTTP, the token and all API traffic in clear text for anyone on the network to read')
    .addOption(new Option('--ca-key <file>', 'the cluster CA\'s private key, to give each joining node a certificate of its own (mutual TLS between nodes); its certificate is --ca-cert\'s (default: .oswalk/pki/ca.key and ca.crt where `oswalk cluster init` ran; without a CA, nodes get no certificate and talk to each other in plain HTTP)').env('OSWALK_CA_KEY'))
    .option('--join <url>', 'join the cluster through the control plane at this https:// URL (as `docker swarm join` a manager): with a join token of role control-plane in $OSWALK_TOKEN or $OSWALK_TOKEN_FILE, checking it against the cluster CA (--ca-cert); it hands over this control plane\'s certificate (for --san), the CA, Redis\' URL and password, kept in --state-dir')
    .option('--san <names>', 'with --join: names and IP addresses agents and the CLI reach this control plane at, comma-separated (its certificate is for them and --listen\'s address)', '')
    .option('--state-dir <dir>', 'where a control plane that joined with --join keeps what it was given (0600 files); started again with it, it needs no --join', DEFAULT_CONTROL_PLANE_STATE_DIR)
    .option('--node-cert-ttl <duration>', 'how long a node certificate lasts; nodes renew theirs after two thirds of it', '30d')
    .option('--node-timeout <duration>', 'mark a node down when its heartbeats stop for this long', '5s')
    .option('--prefix <prefix>', 'Redis key prefix with a {hash tag}', DEFAULT_PREFIX)
    .option('--no-dashboard', 'do not serve the web dashboard at / (the /v1 API is served either way)')
    .addOption(new Option('--default-image <image>', 'docker-runtime nodes run a job that names no image in this image, unless the agent has a --default-image of its own; agents take it when they join').env('OSWALK_DEFAULT_IMAGE'))
    .action(action(async (opts: ControlPlaneFlags, cmd: Command) => {
      const g = cmd.optsWithGlobals() as { token?: string; caCert?: string };
      const listen = parseListen(opts.listen);
      let joined = opts.join ? undefined : readJoinedState(opts.stateDir);
      if (opts.join || joined) {
        const given = JOINED_GIVES.find((f) => opts[f] !== undefined);
        const flag = (f: string) => `--${f.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
        if (given) throw new UsageError(`${flag(given)}: a control plane that joined the cluster takes Redis, its certificate and the CA from ${opts.join ? 'the join' : opts.stateDir}; leave it out${opts.join ? '' : ', or pass another --state-dir'}`);
        if (cmd.getOptionValueSource('prefix') === 'cli') throw new UsageError('--prefix: a control plane that joined the cluster takes the cluster\'s prefix from the join; leave it out');
      }
      if (opts.join) {
        const configFile = findConfigFile();
        joined = await joinControlPlane({
          url: opts.join.replace(/\/$/, ''), token: g.token ?? envToken(), ca: resolveCa(g.caCert, readConfig(configFile), configFile),
          ...(g.caCert ? { caCertFlag: g.caCert } : {}), hosts: joinHosts(opts, listen.host), stateDir: opts.stateDir,
        });
      } else if (opts.san) {
        throw new UsageError('--san goes with --join; for the certificate of a control plane started from `oswalk cluster init`, use `oswalk cluster certs --san`');
      }
      if (joined) {
        const cp = await startJoined(opts, joined, listen);
        await untilSignal();
        return void await cp.close();
      }
      const token = g.token ?? envToken() ?? readConfig().token;
      if (!token) throw new Error('no token: run `oswalk cluster init` first, or pass --token / set OSWALK_TOKEN');
      const { host, port } = listen;
      const { startControlPlane } = await import('../controlplane/index.js');
      const served = apiTls(opts);
      const ca = served === 'insecure-http' ? undefined : await signingCa(opts, g.caCert ?? process.env.OSWALK_CA_CERT);
      const cp = await startControlPlane({
        redisUrl: resolveRedisUrl(opts.redis), agentRedisUrl: opts.agentRedis, token, host, port,
        ...(opts.fsRedis ? { fsRedisUrl: opts.fsRedis } : {}), ...(opts.agentFsRedis ? { agentFsRedisUrl: opts.agentFsRedis } : {}),
        ...(served === 'insecure-http' ? { tls: served } : { tls: served.tls, tlsFiles: served.files }),
        ...(ca ? { ca, nodeCertLifetimeMs: parseDuration(opts.nodeCertTtl) } : {}),
        prefix: opts.prefix, nodeTimeoutMs: parseDuration(opts.nodeTimeout), ...(opts.defaultImage ? { defaultImage: opts.defaultImage } : {}),
        dashboard: opts.dashboard,
      });
      await untilSignal();
      await cp.close();
    }));
}
