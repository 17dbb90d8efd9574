import type { Command } from 'commander';
import type { VersionInfo, VersionList } from '../api/fs.js';
import { action, client, EXIT, output } from './common.js';
import { isoNs, mountOption, namespacePath, relativeToRootNote, versionDocument } from './fs-common.js';
import { formatBytes, listDocument, printRows } from './output.js';

/** What the HASH column shows: the chunk list hash for files, else what kind of entry it is. */
function what(v: VersionInfo): string {
  if (v.type === 'file') return v.chunkListHash!.slice(0, 12);
  if (v.type === 'symlink') return `-> ${v.target}`;
  return `(${v.type === 'tombstone' ? 'deleted' : 'dir'})`;
}

export function register(program: Command): void {
  mountOption(program.command('versions'))
    .description('list the kept versions of a path of the unified filesystem, newest first; CURRENT is what everyone sees')
    .argument('<path>', 'path relative to the unified root, or an absolute path inside a mount of it on this host')
    .action(action(async (arg: string, opts: { mount?: string }, cmd: Command) => {
      const format = output(cmd);
      const path = namespacePath(arg, opts.mount);
      const q = new URLSearchParams({ path });
      const { items } = await client(cmd).get<VersionList>(`/v1/fs/versions?${q}`);
      printRows(format, items, [
        { header: 'ID', value: (v) => v.id },
        { header: 'NODE', value: (v) => v.node },
        { header: 'MTIME', value: (v) => isoNs(v.mtimeNs) },
        { header: 'SIZE', value: (v) => (v.type === 'file' ? formatBytes(v.size) : '-') },
        { header: 'HASH', value: what },
        { header: 'SOURCE', value: (v) => v.source },
        // A version that changed only extended attributes differs from the one before here.
        { header: 'XATTRS', value: (v) => String(Object.keys(v.xattrs ?? {}).length) },
        { header: 'CURRENT', value: (v) => (v.current ? '*' : '') },
      ], { json: listDocument(items.map(versionDocument)), empty: `${path} has no versions${relativeToRootNote(arg, opts.mount)}.` });
      return items.length ? undefined : EXIT.notFound;
    }));
}
