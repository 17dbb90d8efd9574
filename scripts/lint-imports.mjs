#!/usr/bin/env node
/**
 * `npm run lint:imports`: the import rules of .dependency-cruiser.cjs (docs/architecture.md)
 * over src/, test/ and bench/, reported as dependency-cruiser's `err-long` output (each broken
 * rule with the reason for it). Exits 1 when a rule is broken. scripts/test.sh runs it before
 * any test.
 *
 * dependency-cruiser 17 reads TypeScript with the typescript package up to 6.x only; this
 * project builds with TypeScript 7, so dependency-cruiser parses our .ts files as JavaScript,
 * with acorn's error-tolerant parser. That finds every import of the tree today, but a construct
 * it stumbles on could hide an import from the rules without a word. So each import specifier a
 * plain-text scan finds in a file must also be among those dependency-cruiser found, or this
 * fails as well.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cruise, format } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';

const SOURCES = ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'];

process.chdir(fileURLToPath(new URL('..', import.meta.url)));
const options = await extractDepcruiseOptions('./.dependency-cruiser.cjs');
// No outputType: the result itself, formatted below.
const { output: result } = await cruise(SOURCES, options);

// `from 'x'` (import and export), `import 'x'` at the start of a line, `import('x')` (calls and
// import types); not a word inside a string such as '/from' or 'import'.
const IMPORT = /(?<![\w$.'"/-])from\s*['"]([^'"\n]+)['"]|^\s*import\s*['"]([^'"\n]+)['"]|(?<![\w$.'"/-])import\s*\(\s*['"]([^'"\n]+)['"]\s*\)/gm;
const bare = (specifier) => specifier.replace(/^node:/, '');

function specifiers(text) {
  // Comments out, roughly: a // right after ':' or a quote is taken for part of a URL or string.
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
  return new Set([...code.matchAll(IMPORT)].map((m) => bare(m[1] ?? m[2] ?? m[3])));
}

const unseen = [];
for (const m of result.modules) {
  if (!/^(src|test|bench)\/.*\.ts$/.test(m.source)) continue;
  const found = new Set(m.dependencies.map((d) => bare(d.module)));
  for (const s of specifiers(readFileSync(m.source, 'utf8'))) {
    if (!found.has(s)) unseen.push(`  ${m.source}: '${s}'`);
  }
}

const report = await format(result, { outputType: 'err-long' });
process.stdout.write(report.output);
if (unseen.length) {
  process.stderr.write([
    `dependency-cruiser did not see ${unseen.length} import(s) that a text scan finds, so the rules were not checked against them:`,
    ...unseen,
    'Either its parser stumbled on the file (rewrite the construct near the import), or the text is not an import',
    '(in a string: change scripts/lint-imports.mjs).',
    '',
  ].join('\n'));
}
process.exitCode = report.exitCode > 0 || unseen.length ? 1 : 0;
