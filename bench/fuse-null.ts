/**
 * The ceiling of a read through fuse-native on this machine: a mount with the overlay's options
 * whose one 1 GiB file is served from 1 MiB of memory (no disk, no SHA-256, no Redis). Reading
 * it costs only the kernel's FUSE requests and copies and fuse-native's hop to the JavaScript
 * thread and back, which every read through the overlay pays before any work of its own.
 * overlay-io.js mounts it beside the overlay; alone: node dist/bench/fuse-null.js MOUNTDIR.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadFuse, mountOptions } from '../src/overlay/fuse.js';
import { createLogger } from '../src/util/log.js';

export const NULL_FILE = 'f.bin';
const SIZE = 1024 ** 3;
const ENOENT = -2;

type Cb = (code: number, value?: unknown) => void;

function serve(mountDir: string): void {
  const { Fuse } = loadFuse('.', createLogger('fuse-null'));
  const block = randomBytes(1 << 20);
  const stat = (mode: number, size: number) => ({ mode, size, uid: 0, gid: 0, nlink: 1, blksize: 4096, blocks: Math.ceil(size / 512), atime: 0n, mtime: 0n, ctime: 0n });
  const ops = {
    getattr: (p: string, cb: Cb) => (p === '/' ? cb(0, stat(0o40755, 0)) : p === `/${NULL_FILE}` ? cb(0, stat(0o100444, SIZE)) : cb(ENOENT)),
    readdir: (_p: string, cb: Cb) => cb(0, [NULL_FILE]),
    open: (_p: string, _flags: number, cb: Cb) => cb(0, 1),
    release: (_p: string, _fh: number, cb: Cb) => cb(0),
    // Answered on a later turn of the event loop, as the overlay's async handlers are.
    read: (_p: string, _fh: number, buf: Buffer, len: number, pos: number, cb: Cb) => {
      const n = Math.max(0, Math.min(len, SIZE - pos));
      for (let done = 0; done < n;) {
        const at = (pos + done) % block.length;
        done += block.copy(buf, done, at, at + Math.min(n - done, block.length - at));
      }
      setImmediate(() => cb(n));
    },
  };
  const fuse = new Fuse(mountDir, ops, mountOptions({ entryTimeout: 0.5, attrTimeout: 0.5, negativeTimeout: 0.5 }));
  fuse.mount((err) => {
    if (err) throw err;
    process.send?.('mounted');
  });
  process.on('SIGTERM', () => fuse.unmount(() => process.exit(0)));
}

/** Mount the null filesystem at mountDir in a process of its own (a FUSE server must not read its own mount). */
export async function mountNullFs(mountDir: string): Promise<{ stop(): Promise<void> }> {
  mkdirSync(mountDir, { recursive: true });
  const child = fork(fileURLToPath(import.meta.url), [mountDir], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`fuse-null exited with ${code} before mounting ${mountDir}`)));
  });
  return {
    stop: () => new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) serve(process.argv[2]);
