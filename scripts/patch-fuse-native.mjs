#!/usr/bin/env node
// Applies patches/fuse-native-2.2.6.patch to node_modules/fuse-native and builds the addon
// from the patched C source (build/Release/fuse.node, which node-gyp-build loads before the
// unpatched prebuild). Run by `npm install`/`npm ci` as the root package's postinstall; safe to
// run again: it patches only once and rebuilds only when the addon is missing or stale.
//
// The patch fixes what a POSIX filesystem needs from fuse-native 2.2.6: utimens passed atime in
// both slots (mtime could never be set), times lost their nanoseconds, handlers never learned
// the caller's uid/gid/pid, inode numbers were cut to 32 bits, create did not see the open
// flags, times before 1970 turned into times far in the future, and libfuse dropped a utimensat
// that omits one of the times (touch -m, tar's mtimes) since the addon never said it takes
// UTIME_OMIT. It also compiles in
// patches/oswalk-fast-read.c, which serves reads of unchanged files on the FUSE threads,
// patches/oswalk-chunk-check.c, the CRC each chunk file carries, patches/oswalk-passthrough.c,
// FUSE passthrough under libfuse 2, patches/oswalk-names.c, which answers EILSEQ to a name
// that is not UTF-8 before fuse-native turns its stray bytes into U+FFFD, and
// patches/oswalk-attrs.c, which answers the stat of a name just listed on the FUSE threads.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const patches = join(root, 'patches');
const patchFile = join(patches, 'fuse-native-2.2.6.patch');
const MARKER = 'OSWALK_PATCHED v9';
const require = createRequire(join(root, 'package.json'));

let dir;
try {
  dir = dirname(require.resolve('fuse-native/package.json'));
} catch {
  console.log('patch-fuse-native: fuse-native is not installed, nothing to do');
  process.exit(0);
}
const version = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version;
if (version !== '2.2.6') {
  console.error(`patch-fuse-native: ${patchFile} is for fuse-native 2.2.6, found ${version} in ${dir}`);
  process.exit(1);
}

const source = join(dir, 'fuse-native.c');
const text = readFileSync(source, 'utf8');
if (!text.includes(MARKER)) {
  if (text.includes('OSWALK_PATCHED')) {
    console.error(`patch-fuse-native: ${dir} carries an older version of the patch; reinstall it: rm -rf ${dir} && npm install`);
    process.exit(1);
  }
  execFileSync('patch', ['-p1', '--forward', '--no-backup-if-mismatch', '-d', dir, '-i', patchFile], { stdio: 'inherit' });
  console.log(`patch-fuse-native: patched ${dir}`);
}
// OS Walk's own C files, #included by the patched fuse-native.c.
const copies = readdirSync(patches).filter((f) => /^oswalk-.*\.c$/.test(f)).map((f) => {
  const copy = join(dir, f);
  if (!existsSync(copy) || !readFileSync(copy).equals(readFileSync(join(patches, f)))) copyFileSync(join(patches, f), copy);
  return copy;
});

const addon = join(dir, 'build', 'Release', 'fuse.node');
const stale = !existsSync(addon) || [source, ...copies].some((f) => statSync(addon).mtimeMs < statSync(f).mtimeMs);
if (stale) {
  const gyp = [
    () => require.resolve('node-gyp/bin/node-gyp.js'),
    () => join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ].map((f) => { try { return f(); } catch { return ''; } }).find((p) => p && existsSync(p));
  if (!gyp) {
    console.error('patch-fuse-native: node-gyp not found (install devDependencies or npm\'s bundled node-gyp)');
    process.exit(1);
  }
  // The headers of the running node, when installed next to it, spare node-gyp a download
  // (the machines may reach no more than the npm registry).
  const prefix = join(dirname(process.execPath), '..');
  const nodedir = existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
  execFileSync(process.execPath, [gyp, 'rebuild', ...nodedir], { cwd: dir, stdio: 'inherit' });
}

// node-gyp-build must now pick the patched addon.
const binding = require('node-gyp-build')(dir);
if (typeof binding.fuse_native_caller !== 'function' || typeof binding.oswalk_chunk_forget_pages !== 'function') {
  console.error(`patch-fuse-native: fuse-native in ${dir} still loads an unpatched addon (is PREBUILDS_ONLY set?)`);
  process.exit(1);
}
console.log(`patch-fuse-native: ${addon} is patched and loads`);
