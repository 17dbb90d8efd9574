import { readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { processArgv, readPidFile, takePidFile } from '../util/pid-file.js';

/** An agent's state directory when it is given no --state-dir. */
export const DEFAULT_STATE_DIR = '/var/lib/oswalk';

/** What `oswalk agent` records in its state directory while it runs. */
interface AgentRecord {
  pid: number;
  node: string;
}

/** Whether pid is a running `oswalk agent` other than this process. */
function otherAgent(pid: number): boolean {
  if (pid === process.pid) return false;
  const argv = processArgv(pid) ?? [];
  const bin = argv.findIndex((a) => /\boswalk(\.js)?$/.test(a));
  return bin >= 0 && argv.slice(bin + 1).includes('agent');
}

/** The node of the agent running with this state directory now, or undefined when none is. */
export function stateDirAgent(stateDir: string): string | undefined {
  const rec = readPidFile<AgentRecord>(join(stateDir, 'agent.pid'));
  return rec && typeof rec.pid === 'number' && otherAgent(rec.pid) ? rec.node : undefined;
}

export interface StateLock {
  release(): void;
}

/**
 * One agent per state directory. Two would share everything in it: the chunk store (each
 * cluster's garbage collection deletes the chunks only the other's files use), the file
 * cache, the job records and the fence, so the second one's start could stop or fence the
 * first one's jobs (the default --state-dir, /var/lib/oswalk, is the same for every agent on
 * a host). The record of an agent that is gone (killed, a container started again with the
 * same volume) is taken over.
 */
export function lockStateDir(stateDir: string, node: string): StateLock {
  const file = join(stateDir, 'agent.pid');
  const old = readPidFile<AgentRecord>(file);
  if (old && typeof old.pid === 'number' && otherAgent(old.pid)) {
    throw new Error(`the state directory ${stateDir} is in use by the agent of node ${old.node} (pid ${old.pid}): give each agent on a host its own --state-dir (and --mount and --listen)`);
  }
  try {
    unlinkSync(file);
  } catch {
    // none
  }
  takePidFile(file, { pid: process.pid, node } satisfies AgentRecord, `another agent is starting with the state directory ${stateDir} (${file} appeared just now)`);
  return {
    release() {
      try {
        const now = JSON.parse(readFileSync(file, 'utf8')) as AgentRecord;
        if (now.pid === process.pid) unlinkSync(file);
      } catch {
        // already gone
      }
    },
  };
}
