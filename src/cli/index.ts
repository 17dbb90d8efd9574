import { Command } from 'commander';
import { addGlobalOptions, EXIT, exitOnBrokenPipe } from './common.js';
import { register as registerAgent } from './agent.js';
import { register as registerApply } from './apply.js';
import { register as registerClusterInit } from './cluster-init.js';
import { register as registerCerts } from './certs.js';
import { register as registerControlPlane } from './control-plane.js';
import { register as registerDelete } from './delete.js';
import { register as registerDiff } from './diff.js';
import { register as registerDrain } from './drain.js';
import { registerGetObjects } from './get-objects.js';
import { register as registerJobs, registerGetJobs } from './jobs.js';
import { register as registerMount } from './mount.js';
import { register as registerNodeRemove } from './node-remove.js';
import { register as registerNodeRevokeCert } from './node-certs.js';
import { registerGetNodes } from './nodes.js';
import { register as registerRestore } from './restore.js';
import { register as registerRun } from './run.js';
import { register as registerShell } from './shell.js';
import { register as registerStatus } from './status.js';
import { register as registerTokens } from './tokens.js';
import { register as registerTranslate } from './translate.js';
import { register as registerUp } from './up.js';
import { register as registerVersions } from './versions.js';

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

registerUp(program);
const cluster = program.command('cluster').description('create and manage a cluster');
registerClusterInit(cluster);
registerCerts(cluster);
registerControlPlane(program);
registerAgent(program);
registerApply(program);
registerDiff(program);
registerDelete(program);
registerRun(program);
registerShell(program);
registerStatus(program);
const get = program.command('get').description('list resources: nodes, jobs, services, mounts');
registerGetNodes(get);
registerGetJobs(get);
registerGetObjects(get);
registerJobs(program);
registerDrain(program);
const nodeCommand = program.command('node').description('manage the nodes themselves: remove (decommission) one, revoke its certificates');
registerNodeRemove(nodeCommand);
registerNodeRevokeCert(nodeCommand);
registerVersions(program);
registerRestore(program);
registerTranslate(program);
registerMount(program);
registerTokens(program);

await program.parseAsync(process.argv);
