import { InvalidArgumentError, type Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { dump } from 'js-yaml';
import { action, output, UsageError } from './common.js';
import { isDocumentFormat, printDocument } from './output.js';
import { CONFIG_DIR, readConfig, writeConfig } from './config.js';
import { hostList, makeControlPlaneCertificates } from './certs.js';

export function clusterManifest(nodes: string[]): string {
  const docs: object[] = nodes.map((name) => ({
    apiVersion: 'oswalk.dev/v1',
    kind: 'Node',
    metadata: { name },
    spec: { address: name, labels: {}, exportDir: '/var/lib/oswalk/export' },
  }));
  docs.push({
    apiVersion: 'oswalk.dev/v1',
    kind: 'Mount',
    metadata: { name: 'cluster' },
    spec: { path: '/cluster', conflictPolicy: 'newest-wins', replication: [{ prefix: 'shared/', copies: 'all' }], cacheSize: '1Gi' },
  });
  return docs.map((d) => dump(d, { lineWidth: 120 })).join('---\n');
}

/** A commander parser for an http(s) URL: a bad one is a usage error, said before anything is written. */
function httpUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidArgumentError('must be a URL such as https://cp.example:7000');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError('must be an http:// or https:// URL');
  return text;
}

export function register(cluster: Command): void {
  cluster.command('init')
    .description('create a cluster: a token and a cluster manifest in ./.oswalk, and print how to start it')
    .requiredOption('--nodes <names>', 'comma-separated node names, e.g. node1,node2,node3')
    .option('--dir <dir>', 'where to write .oswalk/', '.')
    .option('--control-plane <url>', 'URL the agents and the CLI will reach the control plane at; its host is what the control plane\'s certificate is for', httpUrl, 'https://127.0.0.1:7000')
    .option('--san <names>', 'more names and IP addresses for the control plane\'s certificate, comma-separated (other control planes, a load balancer)', '')
    .option('--insecure-http', 'INSECURE: no CA and no certificate, for a control plane serving plain HTTP (an http:// --control-plane): the token then crosses the network in clear text')
    .option('--force', 'replace an existing token, and the control plane\'s certificate (the CA is kept)')
    .action(action(async (opts: { nodes: string; dir: string; controlPlane: string; san: string; insecureHttp?: boolean; force?: boolean }, cmd: Command) => {
      const out = output(cmd);
      const nodes = opts.nodes.split(',').map((s) => s.trim()).filter(Boolean);
      const bad = nodes.find((n) => !/^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/.test(n));
      if (!nodes.length || bad !== undefined) {
        throw new UsageError(`--nodes: "${bad ?? ''}" is not a valid node name (lower-case letters, digits, '-' and '.', at most 63)`);
      }
      if (new Set(nodes).size !== nodes.length) throw new UsageError('--nodes: a node name is repeated');
      const url = new URL(opts.controlPlane);
      const insecure = !!opts.insecureHttp;
      if (url.protocol === 'http:' && !insecure) {
        throw new UsageError(`--control-plane ${opts.controlPlane}: plain HTTP sends the token in clear text; use https:// (the control plane then gets a certificate from the cluster CA), or pass --insecure-http to mean it`);
      }
      if (url.protocol === 'https:' && insecure) throw new UsageError('--insecure-http goes with an http:// --control-plane');
      if (insecure && opts.san) throw new UsageError('--san names what the certificate is for, and --insecure-http makes none');
      const dir = resolve(opts.dir);
      const existing = join(dir, CONFIG_DIR, 'config.json');
      if (existsSync(existing) && !opts.force) {
        throw new Error(`${existing} already exists: pass --force to make a new token (agents with the old one will be refused)`);
      }
      const { caCert: _dropped, ...prev } = existsSync(existing) ? readConfig(existing) : {};
      // The URL's host as a certificate names it: an IPv6 address without its brackets.
      const hosts = [url.hostname.replace(/^\[(.*)\]$/, '$1'), ...hostList(opts.san)];
      const certs = insecure ? undefined : await makeControlPlaneCertificates(dir, hosts, '--control-plane and --san');
      const token = randomBytes(24).toString('base64url');
      writeConfig(dir, { ...prev, api: opts.controlPlane, token, ...(certs ? { caCert: certs.caCert } : {}) });
      const manifest = join(dir, CONFIG_DIR, 'cluster.yaml');
      writeFileSync(manifest, clusterManifest(nodes));
      const pki = certs?.paths;
      if (isDocumentFormat(out)) {
        return printDocument(out, { token, api: opts.controlPlane, nodes, manifest, ...(pki ? { caCertFile: pki.ca.cert, tlsCertFile: pki.controlPlane.cert, tlsKeyFile: pki.controlPlane.key } : {}) });
      }
      const port = url.port || 7000;
      process.stdout.write([
        `Cluster created: ${nodes.length} node(s), manifest ${manifest}`,
        `Token: ${token}`,
        ...(pki
          ? [`CA: ${pki.ca.cert} (${certs.caCreated ? 'made now' : 'kept'}; keep its key ${pki.ca.key} on this machine only); the control plane's certificate ${pki.controlPlane.cert} is for ${hosts.join(', ')}, valid until ${certs.notAfter.toISOString()}`]
          : ['INSECURE: no certificates (--insecure-http): the token and all API traffic will cross the network in clear text']),
        '',
        'Start the control plane (one machine, next to Redis; its URL, password included, and the token go in the environment, which other users cannot read):',
        ...(pki ? [`  (copy ${pki.controlPlane.cert} and ${pki.controlPlane.key} there, the key readable by the control plane's user only)`] : []),
        `  OSWALK_TOKEN=${token} OSWALK_REDIS_URL=redis://127.0.0.1:6379 oswalk control-plane --listen 0.0.0.0:${port} ${pki ? `--tls-cert ${pki.controlPlane.cert} --tls-key ${pki.controlPlane.key}` : '--insecure-http'}`,
        `Start an agent on each node${pki ? ` (copy ${pki.ca.cert} there)` : ''}:`,
        ...nodes.map((n) => `  OSWALK_TOKEN=${token} oswalk agent --node ${n} --control-plane ${opts.controlPlane}${pki ? ` --ca-cert ${pki.ca.cert}` : ''} --runtime docker --export /var/lib/oswalk/export`),
        'Then apply the cluster manifest and check the nodes:',
        `  oswalk apply -f ${manifest}`,
        '  oswalk status',
        '',
      ].join('\n'));
    }));
}
