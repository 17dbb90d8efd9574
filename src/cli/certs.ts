import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { action, output, UsageError } from './common.js';
import { isDocumentFormat, printDocument } from './output.js';
import { CONFIG_DIR, CONFIG_FILE, pkiPaths, readConfig, writeConfig } from './config.js';
import type { ClusterCa } from '../util/pki.js';

/** What makeControlPlaneCertificates made: the PEM texts, and where they are kept. */
export interface ControlPlaneCertificates {
  /** The cluster CA's certificate, PEM. */
  caCert: string;
  caCreated: boolean;
  /** The CA itself, to sign node certificates with (a control plane started in this process). */
  ca: ClusterCa;
  /** The control plane's certificate and key, PEM. */
  cert: string;
  key: string;
  notAfter: Date;
  paths: ReturnType<typeof pkiPaths>;
}

/**
 * The cluster CA in `<dir>/.oswalk/pki` (made if there is none, kept otherwise: every client
 * trusts it) and a new certificate for the control plane, signed by it, for `hosts`: the names
 * and addresses clients reach the API at. `flag` names where the hosts came from, for an error.
 */
export async function makeControlPlaneCertificates(dir: string, hosts: string[], flag: string, name = 'control-plane'): Promise<ControlPlaneCertificates> {
  // Loaded here: the X.509 library is for the few commands that make certificates.
  const { issueServerCertificate, loadOrCreateCa, subjectAltName } = await import('../util/pki.js');
  for (const host of hosts) {
    try {
      subjectAltName(host);
    } catch (err) {
      throw new UsageError(`${flag}: ${(err as Error).message}`);
    }
  }
  const paths = pkiPaths(dir, name);
  const ca = await loadOrCreateCa(paths.ca);
  const issued = await issueServerCertificate(ca, hosts, paths.controlPlane, name === 'control-plane' ? undefined : `OS Walk ${name}`);
  return { caCert: ca.certPem, caCreated: ca.created, ca, ...issued, paths };
}

/** "a,b, c" as a list, for --san. */
export function hostList(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter(Boolean);
}

export function register(cluster: Command): void {
  cluster.command('certs')
    .description('make the cluster CA in ./.oswalk/pki if there is none (an existing one is kept), and a new certificate for the control plane (or, with --name, another server of the cluster, such as Redis); restart the server to serve it')
    .requiredOption('--san <names>', 'comma-separated names and IP addresses clients reach the server at, e.g. cp.example,10.0.0.5')
    .option('--dir <dir>', 'the cluster\'s directory (the one holding .oswalk/)', '.')
    .option('--name <name>', 'the server the certificate is for: its files are pki/NAME.crt and pki/NAME.key (e.g. redis, for Redis over TLS)', 'control-plane')
    .action(action(async (opts: { san: string; dir: string; name: string }, cmd: Command) => {
      const out = output(cmd);
      const hosts = hostList(opts.san);
      if (!hosts.length) throw new UsageError('--san: name at least one host or address');
      const dir = resolve(opts.dir);
      if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(opts.name) || opts.name === 'ca') throw new UsageError(`--name "${opts.name}": a lowercase name (letters, digits, -) other than ca`);
      const made = await makeControlPlaneCertificates(dir, hosts, '--san', opts.name);
      // The CLI config there, if any, trusts the CA it has now.
      const config = join(dir, CONFIG_DIR, CONFIG_FILE);
      if (existsSync(config)) writeConfig(dir, { ...readConfig(config), caCert: made.caCert });
      const doc = {
        caCertFile: made.paths.ca.cert, caCreated: made.caCreated, tlsCertFile: made.paths.controlPlane.cert, tlsKeyFile: made.paths.controlPlane.key,
        hosts, notAfter: made.notAfter.toISOString(),
      };
      if (isDocumentFormat(out)) return printDocument(out, doc);
      process.stdout.write([
        `CA: ${made.paths.ca.cert} (${made.caCreated ? 'made now: clients need this new ca.crt' : 'kept'})`,
        `${opts.name === 'control-plane' ? 'Control plane' : opts.name} certificate: ${made.paths.controlPlane.cert} and its key ${made.paths.controlPlane.key}, for ${hosts.join(', ')}, valid until ${made.notAfter.toISOString()}`,
        `Restart ${opts.name === 'control-plane' ? 'the control plane' : opts.name} to serve it.`,
        '',
      ].join('\n'));
    }));
}
