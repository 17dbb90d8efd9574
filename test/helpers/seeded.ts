import { createCipheriv, createHash } from 'node:crypto';

/**
 * `bytes` of pseudo-random data from `seed` (AES-CTR over zeros): the same every run with the
 * same seed. Tests whose outcome could depend on the data itself (how many content-defined
 * chunks it makes) use a fixed seed instead of randomBytes, so that no run depends on chance.
 */
export function seededBytes(seed: string, bytes: number): Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(bytes));
}
