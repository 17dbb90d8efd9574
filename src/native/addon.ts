import { createRequire } from 'node:module';
import { dirname } from 'node:path';

const require = createRequire(import.meta.url);

/**
 * fuse-native's addon, made sure to be the one built from patches/fuse-native-2.2.6.patch with
 * OS Walk's C files (patches/oswalk-*.c): the prebuilt one would silently drop mtimes and file
 * ownership, and has neither fast reads nor chunk CRCs.
 */
export function oswalkAddon(): Record<string, unknown> {
  const dir = dirname(require.resolve('fuse-native/package.json'));
  const binding = require('node-gyp-build')(dir) as Record<string, unknown>;
  // The newest function of patches/oswalk-*.c: an addon built from older sources lacks it.
  if (typeof binding.fuse_native_caller !== 'function' || typeof binding.oswalk_fast_read_served !== 'function') {
    throw new Error(`fuse-native in ${dir} runs an addon without OS Walk's patch, or one built from older sources; run: node scripts/patch-fuse-native.mjs`);
  }
  return binding;
}

let optional: Record<string, unknown> | null | undefined;

/**
 * The addon, or null where it is not built (a process that only stores chunks or translates
 * works without it: no chunk CRCs, no extended attributes). Loaded once.
 */
export function oswalkAddonIfBuilt(): Record<string, unknown> | null {
  if (optional === undefined) {
    try {
      optional = oswalkAddon();
    } catch {
      optional = null;
    }
  }
  return optional;
}
