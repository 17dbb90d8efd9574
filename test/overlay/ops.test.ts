import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { constants, mkdtempSync, rmSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { testKeys, useTestRedis } from '../helpers/redis.js';
import { getCurrent } from '../../src/state/fs.js';
import { ChunkFetcher, ChunkStore, LiveChunker } from '../../src/packetfs/index.js';
import { ClusterBackend } from '../../src/overlay/cluster-backend.js';
import { OverlayFs } from '../../src/overlay/ops.js';

const quiet = pino({ level: 'silent' });
const caller = { uid: 0, gid: 0, pid: process.pid };
const OLD = 1_600_000_000_000_000_000n;

/**
 * The operations without FUSE, so the order in which requests interleave can be set exactly:
 * the kernel sends a release after close(2) has returned, and the next syscall's request can
 * reach the filesystem while that release is still committing.
 */
describe('overlay operations: requests that overlap a release', () => {
  const db = useTestRedis();
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  async function mount() {
    const dir = mkdtempSync(join(tmpdir(), 'oswalk-ops-'));
    dirs.push(dir);
    const ks = testKeys();
    const store = new ChunkStore(join(dir, 'store'), { log: quiet });
    const fetcher = new ChunkFetcher({ store, redis: db.redis, ks, fs: { redis: db.redis, ks }, self: 'n1', token: 't', log: quiet });
    const backend = new ClusterBackend({ fs: { redis: db.redis, ks }, node: 'n1', store, fetcher, log: quiet });
    // Commits wait while `held` is set: a release caught in the middle of its commit.
    let held: Promise<void> | null = null;
    const commit = backend.commit.bind(backend);
    backend.commit = async (...args) => {
      await held;
      return commit(...args);
    };
    // As the FS process has it: a file written from empty is chunked as it is written.
    const liveChunker = new LiveChunker(join(dir, 'store'));
    const fs = new OverlayFs({ backend, stagingDir: join(dir, 'staging'), log: quiet, liveChunker });
    await fs.start();
    return {
      fs,
      current: (path: string) => getCurrent(db.redis, ks, path),
      hold(): () => void {
        let go!: () => void;
        held = new Promise((resolve) => (go = resolve));
        return () => {
          held = null;
          go();
        };
      },
      close: async () => {
        await liveChunker.close();
        await backend.close();
        await fetcher.close();
      },
    };
  }

  /** Run a test on a fresh mount's operations, closed after. */
  async function onMount(fn: (m: Awaited<ReturnType<typeof mount>>) => Promise<void>): Promise<void> {
    const m = await mount();
    try {
      await fn(m);
    } finally {
      await m.close();
    }
  }

  async function written(fs: OverlayFs, path: string, content: string): Promise<number> {
    const fh = await fs.create(path, 0o600, constants.O_RDWR | constants.O_EXCL, caller);
    const buf = Buffer.from(content);
    await fs.write(path, fh, buf, buf.length, 0);
    await fs.flush(path, fh);
    return fh;
  }

  // rsync's receiver: create .name.XXXXXX, fchmod, write, close; utimensat; open it, fchmod,
  // close; rename it to name. The first fchmod is committed by the kernel's release of the
  // first handle, which may still be under way when the utimensat comes, or the second open.
  for (const during of ['utimensat', 'open'] as const) {
    it(`keeps the mtime rsync sets when the ${during} comes while the release of the written file commits`, async () => {
      await onMount(async (m) => {
        const tmp = `/.a-${during}.tmp`;
        const fh = await written(m.fs, tmp, 'hello');
        await m.fs.chmod(tmp, 0o600);
        if (during === 'open') await m.fs.utimens(tmp, null, OLD);
        const go = m.hold();
        const release = m.fs.release(tmp, fh);
        await new Promise((r) => setTimeout(r, 20));
        const next = during === 'open' ? m.fs.open(tmp, constants.O_RDONLY) : m.fs.utimens(tmp, null, OLD);
        await new Promise((r) => setTimeout(r, 20));
        go();
        await Promise.all([release, next]);
        const fh2 = during === 'open' ? ((await next) as number) : await m.fs.open(tmp, constants.O_RDONLY);
        await m.fs.chmod(tmp, 0o644);
        await m.fs.flush(tmp, fh2);
        await m.fs.release(tmp, fh2);
        assert.equal((await m.current(tmp))?.mtimeNs, String(OLD));
        await m.fs.rename(tmp, '/a');
        const v = await m.current('/a');
        assert.equal(v?.mtimeNs, String(OLD));
        assert.equal(Number(v?.mode) & 0o777, 0o644);
        assert.equal((await m.fs.getattr('/a')).mtime, OLD);
      });
    });
  }

  it('a file reopened while its last handle is released stays one open file: what the new handle writes, the next open reads', async () => {
    await onMount(async (m) => {
      await m.fs.release('/b', await written(m.fs, '/b', 'first'));
      const fh = await m.fs.open('/b', constants.O_RDONLY);
      m.fs.meta.invalidate('/b'); // the reopen asks Redis, and the release ends meanwhile
      const reopen = m.fs.open('/b', constants.O_RDWR);
      const release = m.fs.release('/b', fh);
      const [fh2] = await Promise.all([reopen, release]);
      const buf = Buffer.from('SECOND');
      await m.fs.write('/b', fh2, buf, buf.length, 0);
      // A third handle, before the second is closed, reads what the second wrote.
      const fh3 = await m.fs.open('/b', constants.O_RDONLY);
      const out = Buffer.alloc(16);
      const n = await m.fs.read('/b', fh3, out, out.length, 0);
      assert.equal(out.subarray(0, n).toString(), 'SECOND');
      assert.equal((await m.fs.getattr('/b')).size, 6);
      await m.fs.release('/b', fh3);
      await m.fs.flush('/b', fh2);
      await m.fs.release('/b', fh2);
      assert.equal((await m.current('/b'))?.size, 6);
    });
  });
  it('a file unlinked before the release of its handle is not brought back by that release', async () => {
    await onMount(async (m) => {
      await m.fs.release('/c', await written(m.fs, '/c', 'data'));
      const fh = await m.fs.open('/c', constants.O_RDWR);
      const more = Buffer.from('more');
      await m.fs.write('/c', fh, more, more.length, 4); // content left to the release to commit
      await m.fs.unlink('/c');
      await m.fs.release('/c', fh);
      assert.equal(await m.current('/c'), undefined);
      await assert.rejects(m.fs.getattr('/c'), { errno: osConstants.errno.ENOENT });
    });
  });
});
