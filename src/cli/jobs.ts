import { Option, type Command } from 'commander';
import type { CancelAnswer, JobList, JobView } from '../api/jobs.js';
import type { LogLine } from '../api/logs.js';
import { ApiError, type ApiClient } from './client.js';
import { action, client, kindOf, output, SELECTOR_HELP, selectorFlag, UsageError } from './common.js';
import { formatAge, printDocument, printRows, type Column } from './output.js';
import { attachJob } from './follow.js';
import { watchRows } from './watch.js';

function jobAge(j: JobView): string {
  const end = j.finishedAt ?? Date.now();
  const start = j.startedAt ?? j.createdAt;
  return j.state === 'pending' || j.state === 'scheduled' ? `${formatAge(Date.now() - j.createdAt)} queued` : formatAge(end - start);
}

export const JOB_COLUMNS: Column<JobView>[] = [
  { header: 'ID', value: (j) => j.id },
  { header: 'NAME', value: (j) => j.name },
  { header: 'STATE', value: (j) => (j.cancelRequested && j.state === 'running' ? 'cancelling' : j.state) },
  { header: 'NODE', value: (j) => j.node ?? (j.lastNode ? `(${j.lastNode})` : undefined) },
  { header: 'ATTEMPT', value: (j) => j.attempt },
  { header: 'EXIT', value: (j) => j.exitCode },
  { header: 'TIME', value: jobAge, ticks: true },
  // Why a job waits, or why it failed: the one thing to know about a job in either state (a
  // program that just exited non-zero has no message of the agent's: its exit code says it).
  { header: 'REASON', value: (j) => (j.state === 'pending' ? j.waitReason : j.state === 'failed' ? j.message || (j.exitCode ? `exit code ${j.exitCode}` : undefined) : undefined) },
  { header: 'OWNER', value: (j) => j.owner && `${j.owner.kind}/${j.owner.name}`, wide: true },
  { header: 'IMAGE / COMMAND', value: (j) => [j.spec.image, ...j.spec.command, ...j.spec.args].filter(Boolean).join(' '), wide: true },
  { header: 'AGE', value: (j) => formatAge(Date.now() - j.createdAt), wide: true, ticks: true },
];

const jobName = (j: JobView) => `job/${j.name}`;

/** `oswalk get jobs` (wired under the `get` command). */
export function registerGetJobs(get: Command): void {
  // `get job` as kubectl users type it; `get jobs NAME...` for some.
  get.command('jobs').alias('job')
    .description('list jobs, newest first, with their state, node and why they wait (all, or the ones named)')
    .argument('[jobs...]', 'only these jobs: ids or names, as `get jobs` shows them')
    .addOption(new Option('--state <state>', 'only jobs in this state').choices(['pending', 'scheduled', 'running', 'succeeded', 'failed', 'cancelled']))
    .option('--owner <kind/name>', 'only the records of this Job or Service manifest, e.g. Job/sweep or svc/web')
    .option('-l, --selector <selector>', `only the jobs of Job and Service manifests whose labels match the selector (${SELECTOR_HELP})`)
    .option('--limit <n>', 'at most this many', '100')
    .option('-w, --watch', 'after the list, print a job again whenever it changes (its state, node, reason...), until Ctrl-C')
    .action(action(async (names: string[], opts: { state?: string; owner?: string; selector?: string; limit: string; watch?: boolean }, cmd: Command) => {
      const format = output(cmd, { names: true });
      // Checked here so that a malformed one is one line of ours, not the API's 400.
      if (opts.selector !== undefined) selectorFlag(opts.selector);
      if (names.length && opts.selector !== undefined) throw new UsageError('give job names or a selector (-l), not both, as kubectl takes them');
      const api = client(cmd);
      const owner = opts.owner ? await ownerOf(opts.owner) : undefined;
      const q = new URLSearchParams({
        limit: opts.limit, ...(opts.state ? { state: opts.state } : {}), ...(owner ? { owner } : {}), ...(opts.selector !== undefined ? { labelSelector: opts.selector } : {}),
      });
      const ids = await Promise.all(names.map((n) => resolveJob(api, n)));
      const list = async () => (ids.length
        ? Promise.all(ids.map((id) => api.get<JobView>(`/v1/jobs/${id}`)))
        : (await api.get<JobList>(`/v1/jobs?${q}`)).items);
      if (opts.watch) return watchRows(format, list, JOB_COLUMNS, { key: (j) => j.id, name: jobName });
      printRows(format, await list(), JOB_COLUMNS, { name: jobName });
    }));
}

/** --owner as kubectl users write it (job/sweep, Job/sweep, svc/web), as the API takes it (Job/sweep). */
async function ownerOf(text: string): Promise<string> {
  const [kind, name, ...rest] = text.split('/');
  const { NAME_PATTERN } = await import('../api/objects.js');
  if (!kind || !name || rest.length || !new RegExp(NAME_PATTERN).test(name)) {
    throw new UsageError(`--owner "${text}" must be KIND/NAME, e.g. Job/sweep or svc/web, with NAME a manifest's name`);
  }
  return `${kindOf(kind, ['Job', 'Service'] as const)}/${name}`;
}

const LIVE = new Set(['pending', 'scheduled', 'running']);

/**
 * A job named as `get jobs` shows it: its id, or its name (`run-<id>`, `<Job or Service>-<index>`,
 * a `run --name`); of several records with one name (a replica restarted), the live one, else
 * the newest.
 */
async function resolveJob(api: ApiClient, arg: string): Promise<string> {
  if (/^[0-9a-f]{12}$/.test(arg)) return arg;
  const run = /^run-([0-9a-f]{12})$/.exec(arg);
  if (run) return run[1];
  const list = async (q: Record<string, string>) => (await api.get<JobList>(`/v1/jobs?${new URLSearchParams({ limit: '10000', ...q })}`)).items;
  const owned = /^([a-z0-9](?:[-a-z0-9.]*[a-z0-9])?)-(\d+)$/.exec(arg);
  let found = owned ? (await Promise.all(['Job', 'Service'].map((k) => list({ owner: `${k}/${owned[1]}` })))).flat().filter((j) => j.name === arg) : [];
  if (!found.length) found = (await list({})).filter((j) => j.name === arg);
  const best = found.sort((a, b) => Number(LIVE.has(b.state)) - Number(LIVE.has(a.state)) || b.createdAt - a.createdAt)[0];
  if (!best) throw new ApiError(404, `no job has the id or name "${arg}" (oswalk get jobs lists them)`);
  return best.id;
}

/** `oswalk logs JOB [-f]`, `oswalk cancel JOB...`, `oswalk describe job JOB`-like `oswalk job JOB`; JOB is an id or a name. */
export function register(program: Command): void {
  program.command('logs')
    .description('print the output of a job (the newest part when it printed more than is kept)')
    .argument('<job>', 'job id or name (as `oswalk get jobs` shows them)')
    .option('-f, --follow', 'keep printing until the job ends, then exit with its exit code')
    .action(action(async (job: string, opts: { follow?: boolean }, cmd: Command) => {
      const api = client(cmd);
      const id = await resolveJob(api, job);
      if (opts.follow) return (await attachJob(api, id, { verbose: true })).code;
      let rest = '';
      const print = (line: string) => {
        if (!line) return;
        const l = JSON.parse(line) as LogLine;
        const data = l.b64 !== undefined ? Buffer.from(l.b64, 'base64') : Buffer.from(l.text ?? '');
        if (l.t === 'out') process.stdout.write(data);
        else if (l.t === 'err') process.stderr.write(data);
        else if (l.t === 'sys') process.stderr.write(`oswalk: ${data.toString()}\n`);
      };
      for await (const chunk of api.stream(`/v1/jobs/${id}/logs`)) {
        const lines = (rest + chunk.toString('utf8')).split('\n');
        rest = lines.pop() ?? '';
        lines.forEach(print);
      }
      print(rest);
    }));

  program.command('cancel')
    .description('cancel jobs: waiting ones end at once, running ones are stopped by their agent')
    .argument('<jobs...>', 'job ids or names')
    .action(action(async (jobs: string[], _opts: unknown, cmd: Command) => {
      const format = output(cmd);
      const api = client(cmd);
      const rows = [];
      for (const job of jobs) rows.push(await api.post<CancelAnswer>(`/v1/jobs/${await resolveJob(api, job)}/cancel`));
      printRows(format, rows, [{ header: 'ID', value: (r) => r.id }, { header: 'STATE', value: (r) => r.state }]);
    }));

  program.command('job')
    .description('show one job in full (JSON, or YAML with -o yaml)')
    .argument('<job>', 'job id or name')
    .action(action(async (arg: string, _opts: unknown, cmd: Command) => {
      const format = output(cmd);
      const api = client(cmd);
      const job = await api.get<JobView>(`/v1/jobs/${await resolveJob(api, arg)}`);
      printDocument(format === 'yaml' ? 'yaml' : 'json', job);
    }));
}
