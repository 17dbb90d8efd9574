/**
 * A million files (issue 21, item 4): the namespace's Redis memory per file, `ls -l` of a
 * 100,000-entry directory through the mount, stat p99 warm and cold, `find | wc -l` over the
 * whole tree, and the translator's rate on small files.
 *
 *   npx tsc -p . && node dist/bench/million-files.js [--dirs=1000] [--per-dir=1000] [--big=100000]
 *       [--mount-dirs=5] [--stat-samples=2000] [--concurrency=2] [--no-report]
 *
 * The tree: `big/` with BIG small files (≤ 4 KiB) in one directory, exported by node n1, and
 * DIRS directories of PER-DIR files (≤ 1 KiB) exported by node n2; both translated by the
 * translator (startTranslator, watch off) into one namespace. Another MOUNT-DIRS directories
 * of PER-DIR files are written through a FUSE mount (python: open, write, close): writing the
 * whole million through FUSE would take hours on this machine, so that part is a slice.
 * Baselines in the same run: the same ls -l, stat and find on the raw export directories on
 * local disk.
 */
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { connectRedis } from '../src/state/redis.js';
import { fsKeyspace, fsPrefixFor } from '../src/state/keys.js';
import { commitVersion, putChunkList } from '../src/state/fs.js';
import { addChunkListLocation, ChunkStore, encodeChunkList, chunkListHash } from '../src/packetfs/index.js';
import { startTranslator } from '../src/translate/index.js';
import { dropCaches, setup, sh } from './overlay-common.js';
import { memoryByKind } from './key-memory.js';
import { table, writeSection } from './report.js';

// As bin/oswalk.js: the translator's fsyncs in flight need the threads (before any I/O).
process.env.UV_THREADPOOL_SIZE ??= '64';

const arg = (name: string, def: number): number => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : def;
};
const DIRS = arg('dirs', 1000);
const PER_DIR = arg('per-dir', 1000);
const BIG = arg('big', 100_000);
const MOUNT_DIRS = arg('mount-dirs', 5);
const STAT_SAMPLES = arg('stat-samples', 2000);
const CONCURRENCY = arg('concurrency', 2);
const REPORT = !process.argv.includes('--no-report');
/**
 * `--seed=dirs`: the DIRS directories are committed straight into the namespace (putChunkList,
 * addChunkListLocation, commitVersion: the records the translator commits, from the same stat),
 * not translated, so that the million fits in the time this machine has; `big/` is always
 * translated. `--seed=all`: `big/` too (development).
 */
const SEED = (process.argv.find((x) => x.startsWith('--seed='))?.slice(7) ?? 'none') as 'none' | 'dirs' | 'all';
const FILES = DIRS * PER_DIR + BIG;

const log = (msg: string) => console.error(`${new Date().toISOString().slice(11, 19)} ${msg}`);
const secsSince = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
const pad = (n: number, w: number) => String(n).padStart(w, '0');

/** Distinct content per file (each its own chunk), `size` bytes. */
const filler = Buffer.alloc(4096, 'abcdefghijklmnopqrstuvwxyz0123456789\n');
function content(name: string, size: number): Buffer {
  const b = Buffer.from(filler.subarray(0, size));
  b.write(name);
  return b;
}

/** A python one-shot that stats every path of a list file, printing each stat's seconds. */
const STAT_PY = `
import os, sys, time
out = []
for p in open(sys.argv[1]).read().split('\\n'):
    if not p: continue
    t = time.perf_counter(); os.stat(p); out.append(time.perf_counter() - t)
print(' '.join(map(str, out)))
`;

const WRITE_PY = `
import os, sys, time
root = sys.argv[1]; dirs = int(sys.argv[2]); per = int(sys.argv[3])
t = time.time()
for d in range(dirs):
    dd = f'{root}/m{d:04d}'
    os.makedirs(dd, exist_ok=True)
    for i in range(per):
        fd = os.open(f'{dd}/f{i:04d}', os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, (f'{dd}/f{i:04d} ' * 8).encode())
        os.close(fd)
print(time.time() - t)
`;

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

async function statTimes(paths: string[], listFile: string): Promise<number[]> {
  writeFileSync(listFile, paths.join('\n'));
  return (await sh(`python3 -c "${STAT_PY}" ${listFile}`)).trim().split(' ').map(Number);
}

function vm(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

async function timedSh(cmd: string): Promise<{ secs: number; out: string }> {
  const t0 = process.hrtime.bigint();
  const out = await sh(cmd);
  return { secs: secsSince(t0), out: out.trim() };
}

const env = await setup();
try {
  const r = connectRedis(env.url);
  // Where a new cluster of prefix {bench}: keeps its files (openFs), as the mount below finds them.
  const ks = fsKeyspace(fsPrefixFor('{bench}:'));
  const info = async (section: string, field: string) => Number(new RegExp(`${field}:(\\d+)`).exec(await r.info(section))![1]);

  // the export directories on local disk
  const exp1 = join(env.dir, 'export1');
  const exp2 = join(env.dir, 'export2');
  let t0 = process.hrtime.bigint();
  mkdirSync(join(exp1, 'big'), { recursive: true });
  for (let i = 0; i < BIG; i++) writeFileSync(join(exp1, 'big', `f${pad(i, 6)}`), content(`big/f${i}`, 64 + ((i * 2654435761) % 4033)));
  for (let d = 0; d < DIRS; d++) {
    const dir = join(exp2, `d${pad(d, 4)}`);
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < PER_DIR; i++) writeFileSync(join(dir, `f${pad(i, 4)}`), content(`d${d}/f${i}`, 64 + ((i * 2654435761 + d) % 961)));
  }
  const makeSecs = secsSince(t0);
  log(`made ${FILES} files on disk in ${makeSecs.toFixed(1)} s`);

  const quiet = pino({ level: 'silent' });
  const used0 = await info('memory', 'used_memory');
  const translate = async (node: string, exportDir: string) => {
    const store = new ChunkStore(join(env.dir, `store-${node}`), { log: quiet });
    const t1 = process.hrtime.bigint();
    const t = await startTranslator({ fs: { redis: r, ks }, node, exportDir, store, log: quiet, watch: false, concurrency: CONCURRENCY, stateFile: join(env.dir, `state-${node}.json`) });
    await t.idle();
    const secs = secsSince(t1);
    const s = t.stats();
    await t.close();
    if (s.errors) throw new Error(`translator ${node}: ${s.errors} errors`);
    return { secs, files: s.filesTranslated, versions: s.versions };
  };
  /** What the translator would commit for every file below exportDir, committed directly, 64 in flight. */
  const seed = async (node: string, exportDir: string) => {
    const t1 = process.hrtime.bigint();
    const paths: string[] = [];
    for (const d of readdirSync(exportDir)) for (const f of readdirSync(join(exportDir, d))) paths.push(`${d}/${f}`);
    const dirs = new Set(paths.map((p) => p.split('/')[0]));
    for (const d of dirs) {
      const st = lstatSync(join(exportDir, d), { bigint: true });
      await commitVersion(r, ks, { path: `/${d}`, type: 'dir', node, source: 'export', mtimeNs: st.mtimeNs.toString(), size: 0, mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid) });
    }
    let next = 0;
    const worker = async () => {
      while (next < paths.length) {
        const p = paths[next++];
        const abs = join(exportDir, p);
        const st = lstatSync(abs, { bigint: true });
        const chunks = [{ hash: createHash('sha256').update(readFileSync(abs)).digest('hex'), size: Number(st.size) }];
        const hash = chunkListHash(chunks);
        await Promise.all([putChunkList(r, ks, hash, encodeChunkList(chunks)), addChunkListLocation(r, ks, hash, node)]);
        await commitVersion(r, ks, { path: `/${p}`, type: 'file', node, source: 'export', mtimeNs: st.mtimeNs.toString(), size: Number(st.size), mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), chunkListHash: hash });
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
    return { secs: secsSince(t1), files: paths.length, versions: paths.length + dirs.size };
  };
  const tBig = SEED === 'all' ? await seed('n1', exp1) : await translate('n1', exp1);
  log(`translated big/: ${tBig.files} files in ${tBig.secs.toFixed(1)} s, ${(tBig.files / tBig.secs).toFixed(0)} files/s`);
  const tDirs = SEED === 'none' ? await translate('n2', exp2) : await seed('n2', exp2);
  log(`translated ${DIRS} dirs: ${tDirs.files} files in ${tDirs.secs.toFixed(1)} s, ${(tDirs.files / tDirs.secs).toFixed(0)} files/s`);
  const used1 = await info('memory', 'used_memory');

  // MEMORY USAGE of every key, by kind (fs:p, fs:d, fs:m, pfs:loc…)
  const byKind = await memoryByKind(r, ks.prefix, (rest) => (rest.startsWith('fs:') || rest.startsWith('pfs:') ? rest.split(':').slice(0, 2).join(':') : rest.split(':')[0]));
  const kinds = (ks2: string[]) => ks2.reduce((s, k) => s + (byKind.get(k)?.bytes ?? 0), 0);
  const NS = ['fs:p', 'fs:d', 'fs:dt', 'fs:dn', 'fs:st', 'fs:at'];
  log(`memory: ${[...byKind].map(([k, v]) => `${k} ${v.keys} keys ${(v.bytes / FILES).toFixed(0)} B/file`).join(', ')}`);

  // a slice written through the mount
  await env.remount();
  const mountWrite = Number(await sh(`python3 -c "${WRITE_PY}" ${env.mnt}/mounted ${MOUNT_DIRS} ${PER_DIR}`));
  const mountFiles = MOUNT_DIRS * PER_DIR;
  log(`through the mount: ${mountFiles} files in ${mountWrite.toFixed(1)} s`);

  // ls -l of the 100,000-entry directory: a fresh FS process (its caches empty), then again warm
  const lsCmd = (dir: string) => `ls -l ${dir} | wc -l`;
  await dropCaches();
  const lsRawCold = await timedSh(lsCmd(join(exp1, 'big')));
  const lsRawWarm = await timedSh(lsCmd(join(exp1, 'big')));
  await env.remount();
  const pid = env.mount.pid!;
  const rssBefore = vm(pid, 'VmRSS');
  await dropCaches();
  const lsCold = await timedSh(lsCmd(join(env.mnt, 'big')));
  const hwmLs = vm(pid, 'VmHWM');
  const lsWarm = await timedSh(lsCmd(join(env.mnt, 'big')));
  log(`ls -l big/: cold ${lsCold.secs.toFixed(2)} s, warm ${lsWarm.secs.toFixed(2)} s (${lsCold.out} lines), FS process RSS ${(rssBefore / 2 ** 20).toFixed(0)} MiB before, peak ${(hwmLs / 2 ** 20).toFixed(0)} MiB`);

  // stat p99: a sample of paths over the whole tree, cold (fresh FS process, caches dropped) then warm
  const sample: string[] = [];
  for (let i = 0; i < STAT_SAMPLES; i++) {
    const k = (i * 2654435761) % FILES;
    sample.push(k < BIG ? `big/f${pad(k, 6)}` : `d${pad(Math.floor((k - BIG) / PER_DIR), 4)}/f${pad((k - BIG) % PER_DIR, 4)}`);
  }
  const rawPath = (p: string) => (p.startsWith('big/') ? join(exp1, p) : join(exp2, p));
  await dropCaches();
  const statRawCold = await statTimes(sample.map(rawPath), join(env.dir, 'stat.txt'));
  const statRawWarm = await statTimes(sample.map(rawPath), join(env.dir, 'stat.txt'));
  await env.remount();
  await dropCaches();
  const statCold = await statTimes(sample.map((p) => join(env.mnt, p)), join(env.dir, 'stat.txt'));
  const statWarm = await statTimes(sample.map((p) => join(env.mnt, p)), join(env.dir, 'stat.txt'));
  const ms = (xs: number[], p: number) => `${(percentile(xs, p) * 1000).toFixed(3)} ms`;
  log(`stat p99: cold ${ms(statCold, 99)}, warm ${ms(statWarm, 99)}`);

  // find | wc -l over the whole tree, fresh FS process
  await dropCaches();
  const findRaw = await timedSh(`find ${exp1} ${exp2} | wc -l`);
  await env.remount();
  const findPid = env.mount.pid!;
  await dropCaches();
  const find = await timedSh(`find ${env.mnt} | wc -l`);
  const hwmFind = vm(findPid, 'VmHWM');
  log(`find: ${find.out} entries in ${find.secs.toFixed(1)} s (raw ${findRaw.secs.toFixed(1)} s), FS process peak ${(hwmFind / 2 ** 20).toFixed(0)} MiB`);

  const redisVersion = /redis_version:(\S+)/.exec(await r.info('server'))![1];
  const perFile = (b: number) => `${(b / FILES).toFixed(0)} B`;
  const row = (name: string, ks2: string[]) => [name, ks2.reduce((s, k) => s + (byKind.get(k)?.keys ?? 0), 0), perFile(kinds(ks2))];
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  const body = `${FILES.toLocaleString('en')} files: \`big/\` with ${BIG.toLocaleString('en')} files of 64 B – 4 KiB (node n1's export
directory, ${SEED === 'all' ? 'committed straight into the namespace' : 'translated'}) and ${DIRS.toLocaleString('en')} directories of ${PER_DIR.toLocaleString('en')} files of 64 B – 1 KiB (node n2's,
${SEED === 'none' ? 'translated' : "committed straight into the namespace with the records the translator makes (--seed): translating them\nat the rate below would have taken most of an hour"}), each file its own chunk; then ${mountFiles.toLocaleString('en')} more written through the mount (${MOUNT_DIRS} directories of ${PER_DIR}: a
slice, since a million creates through FUSE would take hours here). redis ${redisVersion}, no persistence. Raw disk: the
same tree in the export directories (ext4), the baseline of ls, stat and find.

${table(['measure', 'raw disk', 'OS Walk', 'goal'], [
    ['Redis memory per file, namespace (fs:p + fs:d + fs:dt + fs:dn)', '', perFile(kinds(NS)), '≤ 300 B'],
    ['Redis used_memory growth per file, everything (chunk lists, locations, the main dictionary)', '', perFile(used1 - used0), ''],
    [`translation of ${BIG.toLocaleString('en')} small files (≤ 4 KiB), concurrency ${CONCURRENCY}`, '', `${(tBig.files / tBig.secs).toFixed(0)} files/s (${tBig.secs.toFixed(1)} s)`, '≥ 5,000 files/s'],
    [SEED === 'none' ? `translation of ${DIRS} × ${PER_DIR} files` : `${DIRS} × ${PER_DIR} files committed straight into the namespace (--seed)`, '', `${(tDirs.files / tDirs.secs).toFixed(0)} files/s (${tDirs.secs.toFixed(1)} s)`, ''],
    [`ls -l of the ${BIG.toLocaleString('en')}-entry directory, cold (fresh FS process, page cache dropped)`, `${lsRawCold.secs.toFixed(2)} s`, `${lsCold.secs.toFixed(2)} s`, '≤ 3 s'],
    ['the same ls -l again, warm', `${lsRawWarm.secs.toFixed(2)} s`, `${lsWarm.secs.toFixed(2)} s`, ''],
    ['FS process memory: RSS before the ls -l, peak (VmHWM) after', '', `${mib(rssBefore)}, ${mib(hwmLs)}`, 'bounded'],
    [`stat p50 / p99 cold (${STAT_SAMPLES} paths over the tree, fresh FS process)`, `${ms(statRawCold, 50)} / ${ms(statRawCold, 99)}`, `${ms(statCold, 50)} / ${ms(statCold, 99)}`, ''],
    ['stat p50 / p99 warm (the same paths again)', `${ms(statRawWarm, 50)} / ${ms(statRawWarm, 99)}`, `${ms(statWarm, 50)} / ${ms(statWarm, 99)}`, ''],
    [`find \\| wc -l over the whole tree (${find.out} entries), fresh FS process`, `${findRaw.secs.toFixed(1)} s (${findRaw.out})`, `${find.secs.toFixed(1)} s, FS process peak ${mib(hwmFind)}`, ''],
    [`create + write + close through the mount (${mountFiles} files, ≤ 200 B)`, '', `${(mountFiles / mountWrite).toFixed(0)} files/s`, ''],
  ])}

MEMORY USAGE (SAMPLES 0) of every key, by kind, per translated file:

${table(['keys', 'count', 'bytes per file'], [
    row('fs:p (versions of a path)', ['fs:p']),
    row('fs:d (directory indexes)', ['fs:d']),
    row('fs:dt, fs:dn (directory mtimes, subdirectory counts)', ['fs:dt', 'fs:dn']),
    row('namespace total', NS),
    row('fs:m (chunk lists)', ['fs:m']),
    row('pfs:loc (chunk locations, packetfs)', ['pfs:loc']),
    row('fs:mrecent (chunk lists committed since the last chunk list GC pass began; no pass ran here)', ['fs:mrecent']),
  ])}

- Making the tree on disk took ${makeSecs.toFixed(0)} s. JuiceFS documents about 300 bytes of Redis memory per file.
- An \`ls -l\` costs three FUSE requests per entry here (strace: statx, which the kernel turns into a LOOKUP, then
  lgetxattr security.selinux and getxattr system.posix_acl_access), each a hop from a FUSE thread to the FS
  process's JavaScript thread and back; the attributes come from the FS process's cache, which the listing
  filled a page (about 1,000 names) at a time with one Redis step each.
- The machine (2 cores) was shared with other work (see the load average): times swing, bytes are exact.`;
  if (REPORT) writeSection('million-files', 'A million files: namespace memory, ls -l, stat, find, translation', `node dist/bench/million-files.js ${process.argv.slice(2).join(' ')}`.trim(), body);
  else console.log(body);
  r.disconnect();
} finally {
  await env.close();
}
