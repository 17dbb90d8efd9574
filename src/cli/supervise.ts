import type { ChildProcess } from 'node:child_process';

/** SIGTERM, then SIGKILL if it is still there after timeoutMs; resolves when it has exited. */
export function stopChildProcess(child: ChildProcess, timeoutMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

const ASKED_TO_STOP = new Set<NodeJS.Signals>(['SIGINT', 'SIGTERM', 'SIGHUP']);

/**
 * Keep a child of `oswalk up` running, as systemd's Restart=on-failure would: one that crashes
 * (a non-zero exit) or is killed (SIGKILL, to watch the cluster heal) is started again after
 * 1 s, doubling to 30 s while it keeps failing. One that was asked to stop (exit 0, SIGINT,
 * SIGTERM, SIGHUP) stays stopped: Ctrl-C in a terminal signals the whole process group, the
 * children with `up`. `first`: a child already started. Returns its stop.
 */
export function supervise(what: string, start: () => ChildProcess, first = start()): () => Promise<void> {
  let stopping = false;
  let delay = 1000;
  let timer: NodeJS.Timeout | undefined;
  let child = first;
  const watch = (c: ChildProcess) => {
    const startedAt = Date.now();
    child = c;
    // A failed spawn also ends in 'exit' or is retried below; it must not throw as unhandled.
    c.on('error', (err) => process.stderr.write(`oswalk up: ${what}: ${err.message}\n`));
    c.once('exit', (code, signal) => {
      if (stopping || code === 0 || (signal && ASKED_TO_STOP.has(signal))) return;
      if (Date.now() - startedAt > 60_000) delay = 1000;
      process.stderr.write(`oswalk up: ${what} exited (${signal ?? `code ${code}`}); starting it again in ${delay / 1000} s\n`);
      timer = setTimeout(() => {
        if (!stopping) watch(start());
      }, delay);
      delay = Math.min(delay * 2, 30_000);
    });
  };
  watch(first);
  return async () => {
    stopping = true;
    clearTimeout(timer);
    await stopChildProcess(child);
  };
}
