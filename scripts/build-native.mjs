#!/usr/bin/env node
// Compiles OS Walk's C programs into native/, each only when missing or older than its source:
// - oswalk-guard (src/agent/runtime/guard/): the supervisor every job runs under; statically
//   linked, since it also runs as PID 1 inside job containers of any image;
// - oswalk-exec and liboswalk-shell.so (src/cli/shell/): how `oswalk shell` sends the commands
//   typed at its prompt to the cluster.
// Run by `npm ci` (postinstall) and `npm run build`. Without a compiler an up-to-date binary is
// kept (the Docker build stage gets the host's through its context).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cc = process.env.CC ?? 'cc';
const warnings = ['-O2', '-Wall', '-Wextra', '-Werror'];
const targets = [
  { out: 'oswalk-guard', src: 'src/agent/runtime/guard/oswalk-guard.c', flags: ['-static', '-s'] },
  { out: 'oswalk-exec', src: 'src/cli/shell/oswalk-exec.c', flags: ['-s'] },
  { out: 'liboswalk-shell.so', src: 'src/cli/shell/preload.c', flags: ['-shared', '-fPIC', '-s'], libs: ['-ldl'] },
];

let failed = false;
for (const t of targets) {
  const src = join(root, t.src);
  const out = join(root, 'native', t.out);
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) continue;
  mkdirSync(dirname(out), { recursive: true });
  try {
    execFileSync(cc, [...t.flags, ...warnings, '-o', `${out}.tmp`, src, ...(t.libs ?? [])], { stdio: 'inherit' });
  } catch (err) {
    if (existsSync(out)) {
      console.warn(`build-native: cannot compile ${src} (${err.message}); keeping ${out}`);
      continue;
    }
    console.error(`build-native: cannot compile ${src} with ${cc}: install a C compiler and static libc (apt-get install gcc libc6-dev)`);
    failed = true;
    continue;
  }
  renameSync(`${out}.tmp`, out);
  console.log(`build-native: built ${out}`);
}
process.exit(failed ? 1 : 0);
