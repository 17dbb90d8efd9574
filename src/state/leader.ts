import type { Redis } from 'ioredis';
import type { Keyspace } from './keys.js';

/** The id of the control plane that holds the leader lease now (controlplane/leader.ts), if one does. */
export async function leaderHolder(redis: Redis, ks: Keyspace): Promise<string | undefined> {
  return (await redis.get(ks.leader)) ?? undefined;
}
