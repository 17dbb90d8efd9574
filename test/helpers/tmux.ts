import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A terminal for tests of terminal programs: a tmux server of its own (its own socket, so that
 * nothing else's sessions are touched), one window of a fixed size running `bash --norc` with a
 * plain prompt, driven as a person would (send-keys) and read as they would see it
 * (capture-pane).
 */
export class Tmux {
  private constructor(private readonly dir: string) {}

  private get socket(): string {
    return join(this.dir, 'sock');
  }

  static async start(opts: { cols?: number; rows?: number; cwd?: string; env?: Record<string, string> } = {}): Promise<Tmux> {
    const dir = mkdtempSync(join(tmpdir(), 'oswalk-tmux-'));
    // No status line: the window's rows are all the program's. No escape-time: Esc reaches vi at once.
    writeFileSync(join(dir, 'tmux.conf'), 'set -g status off\nset -g escape-time 0\nset -g history-limit 5000\n');
    const t = new Tmux(dir);
    const env = Object.entries({ PS1: '$ ', TERM: 'xterm-256color', ...opts.env }).map(([k, v]) => `${k}=${v}`);
    try {
      await t.tmux('-f', join(dir, 'tmux.conf'), 'new-session', '-d', '-x', String(opts.cols ?? 100), '-y', String(opts.rows ?? 30),
        ...(opts.cwd ? ['-c', opts.cwd] : []), 'env', ...env, 'bash', '--norc', '--noprofile');
      await t.waitFor(/^\$$/m);
    } catch (err) {
      // A suite whose set-up fails runs no after hooks: leave no tmux server behind.
      await t.stop();
      throw err;
    }
    return t;
  }

  async tmux(...args: string[]): Promise<string> {
    return (await run('tmux', ['-S', this.socket, ...args])).stdout;
  }

  /** Type text literally (no key names), then Enter unless told not to. */
  async type(text: string, enter = true): Promise<void> {
    await this.tmux('send-keys', '-l', text);
    if (enter) await this.keys('Enter');
  }

  /** Keys by tmux's names: C-c, C-z, 'C-\\', Escape, Space, q... */
  async keys(...names: string[]): Promise<void> {
    await this.tmux('send-keys', ...names);
  }

  /** The screen as it shows now; tmux leaves out the spaces at the ends of lines (a prompt "$ " shows as "$"). */
  async screen(): Promise<string> {
    return (await this.tmux('capture-pane', '-p')).split('\n').map((l) => l.trimEnd()).join('\n');
  }

  /** Wait until the screen matches, or fail showing what it shows. */
  async waitFor(re: RegExp, timeoutMs = 10_000): Promise<string> {
    const until = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < until) {
      last = await this.screen();
      if (re.test(last)) return last;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`the terminal did not show ${re} within ${timeoutMs} ms; it shows:\n${last}`);
  }

  async resize(cols: number, rows: number): Promise<void> {
    await this.tmux('resize-window', '-x', String(cols), '-y', String(rows));
  }

  async clear(): Promise<void> {
    await this.type('clear');
    await this.tmux('clear-history');
    await this.waitFor(/^\$\s*$/);
  }

  async stop(): Promise<void> {
    await this.tmux('kill-server').catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
