import { Command } from 'commander';
import { addGlobalOptions, EXIT, exitOnBrokenPipe } from './common.js';

const program = new Command('oswalk')
  .description('OS Walk: several Linux machines that feel like one — one filesystem, one pool of CPUs')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  // Every command's --help lists --api, --token, -o too, as kubectl's do.
  .configureHelp({ showGlobalOptions: true })
  .exitOverride((err) => {
    process.exit(err.exitCode === 0 ? 0 : EXIT.usage);
  });
addGlobalOptions(program);
exitOnBrokenPipe();

type Load = (program: Command) => Promise<void>;

/**
 * Every top-level command (aliases included) and how to register it, in the order `--help` lists
 * them. Only the commands a command line names are loaded: a command's modules (fastify for the
 * control plane, FUSE for mount, tables, YAML) cost more to load than most commands take to run,
 * and `oswalk run` should start as close to a bare Node as it can. A line that names none of them
 * (`oswalk`, `--help`, a typo, commander's `help`) loads them all, so help and suggestions are whole.
 */
const COMMANDS: [names: string[], load: Load][] = [
  [['up'], async (p) => (await import('./up.js')).register(p)],
  [['cluster'], async (p) => {
    const [init, certs] = await Promise.all([import('./cluster-init.js'), import('./certs.js')]);
    const cluster = p.command('cluster').description('create and manage a cluster');
    init.register(cluster);
    certs.register(cluster);
  }],
  [['control-plane'], async (p) => (await import('./control-plane.js')).register(p)],
  [['agent'], async (p) => (await import('./agent.js')).register(p)],
  [['apply'], async (p) => (await import('./apply.js')).register(p)],
  [['diff'], async (p) => (await import('./diff.js')).register(p)],
  [['delete'], async (p) => (await import('./delete.js')).register(p)],
  [['run'], async (p) => (await import('./run.js')).register(p)],
  [['shell'], async (p) => (await import('./shell.js')).register(p)],
  [['status'], async (p) => (await import('./status.js')).register(p)],
  [['get'], async (p) => {
    const [nodes, jobs, objects] = await Promise.all([import('./nodes.js'), import('./jobs.js'), import('./get-objects.js')]);
    const get = p.command('get').description('list resources: nodes, jobs, services, mounts');
    nodes.registerGetNodes(get);
    jobs.registerGetJobs(get);
    objects.registerGetObjects(get);
  }],
  [['logs', 'cancel', 'job'], async (p) => (await import('./jobs.js')).register(p)],
  [['drain', 'uncordon'], async (p) => (await import('./drain.js')).register(p)],
  [['node'], async (p) => {
    const [remove, certs] = await Promise.all([import('./node-remove.js'), import('./node-certs.js')]);
    const node = p.command('node').description('manage the nodes themselves: remove (decommission) one, revoke its certificates');
    remove.register(node);
    certs.register(node);
  }],
  [['versions'], async (p) => (await import('./versions.js')).register(p)],
  [['restore'], async (p) => (await import('./restore.js')).register(p)],
  [['translate'], async (p) => (await import('./translate.js')).register(p)],
  [['mount'], async (p) => (await import('./mount.js')).register(p)],
  [['token', 'audit'], async (p) => (await import('./tokens.js')).register(p)],
  [['dashboard'], async (p) => (await import('./dashboard.js')).register(p)],
];

/** The global options that take a value (addGlobalOptions), which the command's name never is. */
const GLOBAL_VALUE_OPTIONS = new Set(['--api', '--token', '--ca-cert', '--request-timeout', '-o', '--output']);

/** The command a command line names: its first word that is neither an option nor an option's value. */
function commandWord(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--') return undefined;
    if (GLOBAL_VALUE_OPTIONS.has(args[i])) i++;
    else if (!args[i].startsWith('-')) return args[i];
  }
  return undefined;
}

const args = process.argv.slice(2);
const word = commandWord(args);
const named = COMMANDS.find(([names]) => word !== undefined && names.includes(word));
// `oswalk --version` needs no command at all.
const versionOnly = word === undefined && (args.includes('--version') || args.includes('-V'));
// One at a time, in the table's order: commander lists commands in the order they were added.
for (const [, load] of named ? [named] : versionOnly ? [] : COMMANDS) await load(program);

await program.parseAsync(process.argv);
