/**
 * The control planes a client knows, as flags, variables and configs give them: one URL, or
 * every control plane of the cluster separated by commas, which clients try in turn (so that
 * the one that is down costs a refused connection, not the cluster).
 */
export function controlPlaneList(value: string): string[] {
  return value.split(',').map((a) => a.trim().replace(/\/$/, '')).filter(Boolean);
}
