/**
 * chokidar 5 against node's fs.watch({ recursive: true }) for the translate daemon.
 *
 *   npx tsc -p . && node dist/bench/fsmeta-watch.js > section.md
 *
 * For each watcher, on a fresh temp tree of DIRS directories: time until ready, then create,
 * modify, rename and delete FILES files, half of them in directories created after the
 * watch started (the case recursive watchers get wrong), and count the paths the watcher
 * reported at all and how long after the change the first report came.
 */
import { watch as fsWatch, mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { watch as chokidarWatch } from 'chokidar';

const DIRS = 500;
const FILES = 400;

interface Result { name: string; readyMs: number; seen: Record<string, number>; p50: number; max: number }

async function run(name: string, start: (dir: string, onPath: (p: string) => void) => Promise<() => Promise<void>>): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'oswalk-watch-'));
  for (let i = 0; i < DIRS; i++) mkdirSync(join(dir, `old${i % 20}`, `d${i}`), { recursive: true });
  const firstSeen = new Map<string, number>();
  const t0 = performance.now();
  const stop = await start(dir, (p) => {
    if (!firstSeen.has(p)) firstSeen.set(p, performance.now());
  });
  const readyMs = performance.now() - t0;
  const changedAt = new Map<string, number>();
  const phase = async (label: string, paths: string[], act: (p: string) => void) => {
    for (const p of paths) {
      firstSeen.delete(p);
      changedAt.set(`${label}:${p}`, performance.now());
      act(p);
    }
    await new Promise((r) => setTimeout(r, 1500));
    let n = 0;
    const lat: number[] = [];
    for (const p of paths) {
      const at = firstSeen.get(p);
      if (at !== undefined) {
        n++;
        lat.push(at - changedAt.get(`${label}:${p}`)!);
      }
    }
    return { n, lat };
  };
  const files: string[] = [];
  for (let i = 0; i < FILES; i++) {
    const sub = i % 2 ? join(dir, `old${i % 20}`, `d${i}`) : join(dir, 'new', `n${i % 10}`);
    files.push(join(sub, `f${i}`));
  }
  const seen: Record<string, number> = {};
  const lats: number[] = [];
  const record = (label: string, r: { n: number; lat: number[] }) => {
    seen[label] = r.n;
    lats.push(...r.lat);
  };
  record('create', await phase('create', files, (p) => {
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, 'a');
  }));
  record('modify', await phase('modify', files, (p) => writeFileSync(p, 'bb')));
  const renamed = files.map((p) => p + '.r');
  record('rename', await phase('rename', renamed, (p) => renameSync(p.slice(0, -2), p)));
  record('delete', await phase('delete', renamed, (p) => unlinkSync(p)));
  await stop();
  rmSync(dir, { recursive: true, force: true });
  lats.sort((a, b) => a - b);
  return { name, readyMs, seen, p50: lats[Math.floor(lats.length / 2)] ?? NaN, max: lats[lats.length - 1] ?? NaN };
}

const results = [
  await run('chokidar 5', async (dir, on) => {
    const w = chokidarWatch(dir, { ignoreInitial: true, followSymlinks: false });
    w.on('all', (_e, p) => on(p));
    await new Promise<void>((r) => w.once('ready', () => r()));
    return () => w.close();
  }),
  await run('fs.watch recursive', async (dir, on) => {
    const w = fsWatch(dir, { recursive: true }, (_e, f) => f && on(join(dir, f.toString())));
    return async () => w.close();
  }),
];

console.log(`## Watching the export directory: chokidar 5 vs fs.watch recursive (fsmeta)

${new Date().toISOString().slice(0, 10)}, ${cpus().length} × ${cpus()[0].model}, Node ${process.version}, Linux.
Command: \`npx tsc -p . && node dist/bench/fsmeta-watch.js\`

A tree of ${DIRS} directories; ${FILES} files created (half in directories made after the watch began),
then modified, renamed and deleted. "seen" = paths reported at least once within 1.5 s of the change.

| watcher | ready (ms) | create seen | modify seen | rename seen | delete seen | first report p50 (ms) | max (ms) |
| --- | --- | --- | --- | --- | --- | --- | --- |
${results.map((r) => `| ${r.name} | ${r.readyMs.toFixed(0)} | ${r.seen.create}/${FILES} | ${r.seen.modify}/${FILES} | ${r.seen.rename}/${FILES} | ${r.seen.delete}/${FILES} | ${r.p50.toFixed(1)} | ${r.max.toFixed(1)} |`).join('\n')}
`);
