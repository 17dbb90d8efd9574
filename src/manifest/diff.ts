import { dump } from 'js-yaml';
import { createTwoFilesPatch, FILE_HEADERS_ONLY } from 'diff';
import type { Manifest } from './index.js';

/**
 * What applying `next` would change of `live` (undefined: not applied yet), as kubectl diff
 * shows it: a unified diff of the two in YAML with sorted keys, both in the normalized form the
 * cluster stores (defaults filled in, quantities in plain numbers), so that only real changes
 * show; '' when nothing would change. `oswalk diff` prints it; the API's dry run answers it.
 */
export function manifestDiff(live: Manifest | undefined, next: Manifest): string {
  const yaml = (m: Manifest | undefined) => (m ? dump(m, { noRefs: true, lineWidth: -1, sortKeys: true }) : '');
  const before = yaml(live);
  const after = yaml(next);
  if (before === after) return '';
  const name = `${next.kind.toLowerCase()}/${next.metadata.name}`;
  return createTwoFilesPatch(before ? `live/${name}` : '/dev/null', `merged/${name}`, before, after, undefined, undefined, { headerOptions: FILE_HEADERS_ONLY });
}
