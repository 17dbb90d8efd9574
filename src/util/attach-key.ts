import { createHash } from 'node:crypto';

/**
 * What a job's spec keeps of a session's secret (spec.attachKey, src/api/attach.ts): its SHA-256
 * in hex. The client makes it, the agent checks a secret against it.
 */
export const attachKeyOf = (secret: string) => createHash('sha256').update(secret).digest('hex');
