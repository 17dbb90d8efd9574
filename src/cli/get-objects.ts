import type { Command } from 'commander';
import type { Manifest, MountManifest, ServiceManifest } from '../manifest/index.js';
import type { JobRecord, OwnerStatus } from '../state/jobs.js';
import { TERMINAL_STATES } from '../state/types.js';
import { ApiError, type ApiClient } from './client.js';
import { action, client, globals, kindOf } from './common.js';
import { formatBytes, printRows } from './output.js';

async function ownerStatus(api: ApiClient, kind: string, name: string): Promise<OwnerStatus | undefined> {
  try {
    return await api.get<OwnerStatus>(`/v1/owners/${kind}/${name}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return undefined;
    throw err;
  }
}

/** `oswalk get services|mounts|manifests KIND`: applied manifests with their live status. */
export function registerGetObjects(get: Command): void {
  get.command('services').aliases(['service', 'svc'])
    .description('list Services with their desired replicas and what runs')
    .action(action(async (_opts, cmd: Command) => {
      const api = client(cmd);
      const { items } = await api.get<{ items: ServiceManifest[] }>('/v1/objects/Service');
      // READY as kubectl shows it: replicas running of those wanted (PHASE is the Service's own:
      // Running until deleted); RESTARTS: how often its replicas now in place were started again
      // (a crash, a move off a node that went down).
      const replicas = async (name: string) => {
        const { items: jobs } = await api.get<{ items: JobRecord[] }>(`/v1/jobs?${new URLSearchParams({ owner: `Service/${name}`, limit: '1000' })}`);
        const live = jobs.filter((j) => !TERMINAL_STATES.has(j.state));
        return { ready: live.filter((j) => j.state === 'running').length, restarts: live.reduce((n, j) => n + Math.max(0, j.attempt - 1), 0) };
      };
      const rows = await Promise.all(items.map(async (s) => ({
        manifest: s, status: await ownerStatus(api, 'Service', s.metadata.name), ...(await replicas(s.metadata.name)),
      })));
      printRows(globals(cmd).output, rows, [
        { header: 'NAME', value: (r) => r.manifest.metadata.name },
        { header: 'READY', value: (r) => `${r.ready}/${r.manifest.spec.replicas}` },
        { header: 'PHASE', value: (r) => r.status?.phase },
        { header: 'RESTARTS', value: (r) => r.restarts },
        { header: 'RUNTIME', value: (r) => r.manifest.spec.runtime },
        { header: 'IMAGE / COMMAND', value: (r) => r.manifest.spec.image ?? r.manifest.spec.command.join(' ') },
      ], { items: rows.map((r) => ({ ...r.manifest, status: r.status && { ...r.status, readyReplicas: r.ready, restarts: r.restarts } })) });
    }));

  get.command('mounts').alias('mount')
    .description('list Mounts with their replication rules and cache size')
    .action(action(async (_opts, cmd: Command) => {
      const { items } = await client(cmd).get<{ items: MountManifest[] }>('/v1/objects/Mount');
      printRows(globals(cmd).output, items, [
        { header: 'NAME', value: (m) => m.metadata.name },
        { header: 'PATH', value: (m) => m.spec.path },
        { header: 'CONFLICTS', value: (m) => m.spec.conflictPolicy },
        { header: 'REPLICATION', value: (m) => m.spec.replication.map((r) => `${r.prefix}→${r.copies}`).join(', ') || '-' },
        { header: 'CACHE', value: (m) => formatBytes(m.spec.cacheSizeBytes) },
        { header: 'FILE CACHE', value: (m) => formatBytes(m.spec.fileCacheSizeBytes) },
      ], { items });
    }));

  get.command('manifests')
    .description('list applied manifests of one kind (Job, Service, Node, Mount) as stored')
    .argument('<kind>', 'Job, Service, Node or Mount')
    .action(action(async (kind: string, _opts, cmd: Command) => {
      const { KINDS } = await import('../manifest/index.js');
      const k = kindOf(kind, KINDS);
      const { items } = await client(cmd).get<{ items: Manifest[] }>(`/v1/objects/${k}`);
      printRows(globals(cmd).output, items, [
        { header: 'KIND', value: (m) => m.kind },
        { header: 'NAME', value: (m) => m.metadata.name },
        { header: 'LABELS', value: (m) => Object.entries(m.metadata.labels).map(([a, b]) => `${a}=${b}`).join(',') || '-' },
      ], { items });
    }));
}
