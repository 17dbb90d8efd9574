/** The longest delay setTimeout takes; past it, Node waits 1 ms instead (about 24.8 days). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * setTimeout for any delay, unref'd when asked: a job's 30-day deadline, a certificate renewed
 * 243 days from now. Node's setTimeout fires such a delay after 1 ms (with a
 * TimeoutOverflowWarning), which made every renewal start the next at once, in a loop.
 */
export function longTimeout(fn: () => void, ms: number, opts: { unref?: boolean } = {}): { clear(): void } {
  let timer: NodeJS.Timeout;
  const arm = (left: number): void => {
    timer = setTimeout(() => (left > MAX_TIMEOUT_MS ? arm(left - MAX_TIMEOUT_MS) : fn()), Math.min(left, MAX_TIMEOUT_MS));
    if (opts.unref) timer.unref();
  };
  arm(Math.max(0, ms));
  return { clear: () => clearTimeout(timer) };
}
