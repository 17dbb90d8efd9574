import { Option, type Command } from 'commander';
import type { Kind, Manifest, MountManifest, ServiceManifest } from '../manifest/index.js';
import { matchesLabels } from '../manifest/labels.js';
import type { JobList, OwnerStatus } from '../api/jobs.js';
import type { ListAnswer } from '../api/lists.js';
import { TERMINAL_STATES } from '../api/job-states.js';
import { ApiError, type ApiClient } from './client.js';
import { action, client, kindOf, output, SELECTOR_HELP, selectorFlag } from './common.js';
import { formatBytes, formatLabels, listDocument, printRows } from './output.js';

async function ownerStatus(api: ApiClient, kind: string, name: string): Promise<OwnerStatus | undefined> {
  try {
    return await api.get<OwnerStatus>(`/v1/owners/${kind}/${name}`);
  } catch (err) {
    if (err instanceof ApiError && err.code === 'NotFound') return undefined;
    throw err;
  }
}

/**
 * Applied manifests of a kind, those whose labels match -l when it is given. The API lists them
 * whole (they are few, and have no paging), so the selector is applied here, for every kind.
 */
async function listObjects<M extends Manifest>(api: ApiClient, kind: Kind, selectorText: string | undefined): Promise<M[]> {
  const selector = selectorText === undefined ? undefined : selectorFlag(selectorText);
  const { items } = await api.get<ListAnswer<M>>(`/v1/objects/${kind}`);
  return items.filter((m) => !selector || matchesLabels(selector, m.metadata.labels));
}

const selectorOption = (what: string) => new Option('-l, --selector <selector>', `only ${what} whose labels match the selector (${SELECTOR_HELP})`);
const objectName = (m: Manifest) => `${m.kind.toLowerCase()}/${m.metadata.name}`;

/** `oswalk get services|mounts|manifests KIND`: applied manifests with their live status. */
export function registerGetObjects(get: Command): void {
  get.command('services').aliases(['service', 'svc'])
    .description('list Services with their desired replicas and what runs')
    .addOption(selectorOption('Services'))
    .action(action(async (opts: { selector?: string }, cmd: Command) => {
      const format = output(cmd, { names: true });
      const api = client(cmd);
      const items = await listObjects<ServiceManifest>(api, 'Service', opts.selector);
      // READY as kubectl shows it: replicas running of those wanted (PHASE is the Service's own:
      // Running until deleted); RESTARTS: how often its replicas now in place were started again
      // (a crash, a move off a node that went down).
      const replicas = async (name: string) => {
        const { items: jobs } = await api.get<JobList>(`/v1/jobs?${new URLSearchParams({ owner: `Service/${name}`, limit: '1000' })}`);
        const live = jobs.filter((j) => !TERMINAL_STATES.has(j.state));
        return { ready: live.filter((j) => j.state === 'running').length, restarts: live.reduce((n, j) => n + Math.max(0, j.attempt - 1), 0) };
      };
      const rows = await Promise.all(items.map(async (s) => ({
        manifest: s, status: await ownerStatus(api, 'Service', s.metadata.name), ...(await replicas(s.metadata.name)),
      })));
      printRows(format, rows, [
        { header: 'NAME', value: (r) => r.manifest.metadata.name },
        { header: 'READY', value: (r) => `${r.ready}/${r.manifest.spec.replicas}` },
        { header: 'PHASE', value: (r) => r.status?.phase },
        { header: 'RESTARTS', value: (r) => r.restarts },
        { header: 'RUNTIME', value: (r) => r.manifest.spec.runtime ?? 'any' },
        { header: 'IMAGE / COMMAND', value: (r) => r.manifest.spec.image ?? r.manifest.spec.command.join(' ') },
        { header: 'CPUS', value: (r) => r.manifest.spec.resources.cpus, wide: true },
        { header: 'NODE SELECTOR', value: (r) => formatLabels(r.manifest.spec.nodeSelector), wide: true },
        { header: 'LABELS', value: (r) => formatLabels(r.manifest.metadata.labels), wide: true },
      ], {
        json: listDocument(rows.map((r) => ({ ...r.manifest, status: r.status && { ...r.status, readyReplicas: r.ready, restarts: r.restarts } }))),
        name: (r) => objectName(r.manifest),
      });
    }));

  get.command('mounts').alias('mount')
    .description('list Mounts with their replication rules and cache size')
    .addOption(selectorOption('Mounts'))
    .action(action(async (opts: { selector?: string }, cmd: Command) => {
      const format = output(cmd, { names: true });
      const items = await listObjects<MountManifest>(client(cmd), 'Mount', opts.selector);
      printRows(format, items, [
        { header: 'NAME', value: (m) => m.metadata.name },
        { header: 'PATH', value: (m) => m.spec.path },
        { header: 'CONFLICTS', value: (m) => m.spec.conflictPolicy },
        { header: 'REPLICATION', value: (m) => m.spec.replication.map((r) => `${r.prefix}→${r.copies}`).join(', ') || '-' },
        { header: 'CACHE', value: (m) => formatBytes(m.spec.cacheSizeBytes) },
        { header: 'FILE CACHE', value: (m) => formatBytes(m.spec.fileCacheSizeBytes) },
        { header: 'LABELS', value: (m) => formatLabels(m.metadata.labels), wide: true },
      ], { name: objectName });
    }));

  get.command('manifests')
    .description('list applied manifests of one kind (Job, Service, Node, Mount) as stored')
    .argument('<kind>', 'Job, Service, Node or Mount')
    .addOption(selectorOption('manifests'))
    .action(action(async (kind: string, opts: { selector?: string }, cmd: Command) => {
      const format = output(cmd, { names: true });
      const { KINDS } = await import('../manifest/index.js');
      const items = await listObjects(client(cmd), kindOf(kind, KINDS), opts.selector);
      printRows(format, items, [
        { header: 'KIND', value: (m) => m.kind },
        { header: 'NAME', value: (m) => m.metadata.name },
        { header: 'LABELS', value: (m) => formatLabels(m.metadata.labels) },
      ], { name: objectName });
    }));
}
