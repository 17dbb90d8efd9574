/** Poll `fn` until it returns something truthy, and return that; fail after `ms` naming `what`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 4000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
