/**
 * The alert rules shipped in docker/alerts.yml, with the real promtool (Debian's prometheus
 * package): they parse (`promtool check rules`), the cases of test/metrics/alerts-test.yml pass
 * (`promtool test rules`), and those cases would catch a rule that never fires or always
 * fires. Every rule tells the operator what to do, and reads only metrics the code defines.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dump, load } from 'js-yaml';

/** The repository root (this file compiles to dist/test/metrics/). */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const rulesFile = join(root, 'docker', 'alerts.yml');
const casesFile = join(root, 'test', 'metrics', 'alerts-test.yml');

interface Rule { alert: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
interface RuleFile { groups: Array<{ name: string; rules: Rule[] }> }
interface Cases { rule_files: string[]; tests: Array<{ name: string; alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }> }

const rules = load(readFileSync(rulesFile, 'utf8')) as RuleFile;
const alerts = rules.groups.flatMap((g) => g.rules);

/** promtool, or a failure that says what to install: a missing tool must not pass as a skip. */
function promtool(...args: string[]): { status: number; output: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8', cwd: root });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new Error('promtool is not installed: it comes with Debian\'s prometheus package (apt-get install prometheus, or scripts/setup.sh --test)');
  }
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}

/** `promtool test rules` on the cases, against a copy of the rules with one rule's expr replaced. */
function testWithExpr(alert: string, expr: string): { status: number; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'oswalk-alerts-'));
  try {
    const changed: RuleFile = { groups: rules.groups.map((g) => ({ ...g, rules: g.rules.map((r) => (r.alert === alert ? { ...r, expr } : r)) })) };
    writeFileSync(join(dir, 'alerts.yml'), dump(changed));
    const cases = load(readFileSync(casesFile, 'utf8')) as Cases;
    writeFileSync(join(dir, 'alerts-test.yml'), dump({ ...cases, rule_files: ['alerts.yml'] }));
    return promtool('test', 'rules', join(dir, 'alerts-test.yml'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The source text of every .ts file under src/. */
function sources(dir = join(root, 'src')): string {
  return readdirSync(dir, { withFileTypes: true }).map((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? readFileSync(p, 'utf8') : '';
  }).join('\n');
}

describe('alert rules (docker/alerts.yml)', () => {
  it('pass promtool check rules', () => {
    const r = promtool('check', 'rules', rulesFile);
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, new RegExp(`SUCCESS: ${alerts.length} rules found`));
  });

  it('pass their promtool unit tests (test/metrics/alerts-test.yml)', () => {
    const r = promtool('test', 'rules', casesFile);
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /SUCCESS/);
  });

  it('cover what the operator items ask for, each with a severity and words on what to do', () => {
    assert.deepEqual(alerts.map((a) => a.alert).sort(), [
      'OSWalkControlPlaneAbsent', 'OSWalkFSProcessRestarting', 'OSWalkJobsFailing', 'OSWalkJobsWaitingTooLong',
      'OSWalkNodeDown', 'OSWalkStoreNearlyFull', 'RedisDown',
    ]);
    for (const a of alerts) {
      assert.match(a.labels?.severity ?? '', /^(warning|critical)$/, a.alert);
      assert.ok((a.annotations?.summary ?? '').length > 10, `${a.alert} has a summary`);
      assert.ok((a.annotations?.description ?? '').length > 100, `${a.alert} has a description that says what to do`);
    }
  });

  it('each have a case where they fire and one where they do not, and those cases catch a broken rule', () => {
    const cases = (load(readFileSync(casesFile, 'utf8')) as Cases).tests.flatMap((t) => t.alert_rule_test);
    for (const a of alerts) {
      const mine = cases.filter((c) => c.alertname === a.alert);
      assert.ok(mine.some((c) => c.exp_alerts.length > 0), `${a.alert}: no case fires it`);
      assert.ok(mine.some((c) => c.exp_alerts.length === 0), `${a.alert}: no case where it stays quiet`);
      // `vector(1) == 0` is always empty; `vector(1)` always a sample.
      for (const [broken, expr] of [['never fires', 'vector(1) == 0'], ['always fires', 'vector(1)']]) {
        const r = testWithExpr(a.alert, expr);
        assert.notEqual(r.status, 0, `the cases pass with ${a.alert} broken (${broken})`);
        assert.match(r.output, new RegExp(`alertname: ${a.alert}`), `the failure names ${a.alert}:\n${r.output}`);
      }
    }
  });

  it('read OS Walk metrics the code defines', () => {
    const src = sources();
    const used = new Set(alerts.flatMap((a) => a.expr.match(/\boswalk_\w+/g) ?? []));
    assert.ok(used.size >= 6, [...used].join(' '));
    for (const name of used) assert.ok(src.includes(`'${name}'`), `${name} is not defined in src/`);
  });
});
