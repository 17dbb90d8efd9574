/** Collects a job's output as the runtimes deliver it, keeping chunk sizes for streaming checks. */
export class Output {
  readonly chunks: { stream: 'stdout' | 'stderr'; size: number; at: number }[] = [];
  private readonly parts: Record<'stdout' | 'stderr', Buffer[]> = { stdout: [], stderr: [] };
  private waiters: { text: string; resolve: () => void }[] = [];
  bytes = 0;

  constructor(private readonly keep = true) {}

  readonly onOutput = (stream: 'stdout' | 'stderr', data: Buffer): void => {
    this.chunks.push({ stream, size: data.length, at: Date.now() });
    this.bytes += data.length;
    if (this.keep) this.parts[stream].push(data);
    this.waiters = this.waiters.filter((w) => {
      if (!this.stdout.includes(w.text)) return true;
      w.resolve();
      return false;
    });
  };

  get stdout(): string {
    return Buffer.concat(this.parts.stdout).toString();
  }

  get stderr(): string {
    return Buffer.concat(this.parts.stderr).toString();
  }

  /** Resolves once stdout contains text; rejects after timeoutMs. */
  waitFor(text: string, timeoutMs = 10_000): Promise<void> {
    if (this.stdout.includes(text)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${text}" on stdout after ${timeoutMs} ms; got ${JSON.stringify(this.stdout.slice(-200))}`)), timeoutMs);
      this.waiters.push({ text, resolve: () => { clearTimeout(timer); resolve(); } });
    });
  }
}
