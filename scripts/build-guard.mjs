#!/usr/bin/env node
// Compiles src/agent/runtime/guard/oswalk-guard.c, the supervisor every job runs under, into
// native/oswalk-guard: statically linked, since it also runs as PID 1 inside job containers of
// any image. Run by `npm ci` (postinstall) and `npm run build`; compiles only when the binary is
// missing or older than its source. Without a compiler an up-to-date binary is kept (the Docker
// build stage gets the host's through its context).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src', 'agent', 'runtime', 'guard', 'oswalk-guard.c');
const out = join(root, 'native', 'oswalk-guard');
if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) process.exit(0);
const cc = process.env.CC ?? 'cc';
mkdirSync(dirname(out), { recursive: true });
try {
  execFileSync(cc, ['-static', '-s', '-O2', '-Wall', '-Wextra', '-Werror', '-o', `${out}.tmp`, src], { stdio: 'inherit' });
} catch (err) {
  if (existsSync(out)) {
    console.warn(`build-guard: cannot compile ${src} (${err.message}); keeping ${out}`);
    process.exit(0);
  }
  console.error(`build-guard: cannot compile ${src} with ${cc}: install a C compiler and static libc (apt-get install gcc libc6-dev)`);
  process.exit(1);
}
renameSync(`${out}.tmp`, out);
console.log(`build-guard: built ${out}`);
