/**
 * The job commands of the oswalk CLI on their own program, so tests can run them as a
 * real process before (and independently of) their wiring into src/cli/index.ts.
 */
import { Command } from 'commander';
import { addGlobalOptions } from '../../src/cli/common.js';
import { register as registerRun } from '../../src/cli/run.js';
import { register as registerJobs, registerGetJobs } from '../../src/cli/jobs.js';
import { register as registerDrain } from '../../src/cli/drain.js';

const program = new Command('oswalk').exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
addGlobalOptions(program);
registerRun(program);
registerJobs(program);
registerDrain(program);
registerGetJobs(program.command('get'));
await program.parseAsync(process.argv);
