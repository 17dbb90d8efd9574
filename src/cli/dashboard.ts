import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { action, type GlobalFlags } from './common.js';
import { resolveApi } from './config.js';

export function register(program: Command): void {
  program.command('dashboard')
    .description('the web dashboard: prints its address, and opens it in a browser where there is a desktop')
    .option('--no-open', 'only print the address')
    .action(action(async (opts: { open: boolean }, cmd: Command) => {
      const { apis, ca } = resolveApi(cmd.optsWithGlobals() as GlobalFlags);
      // Every control plane serves it (any of them holds a session another started).
      const url = `${apis[0]}/`;
      process.stdout.write(`${url}\n`);
      process.stderr.write(`Log in with the cluster token or a token from \`oswalk token create\`.${ca && url.startsWith('https:')
        ? ` The page's certificate is signed by the cluster CA (${ca.source}): the browser warns about it until you trust that CA.` : ''}\n`);
      if (opts.open && (process.env.DISPLAY || process.env.WAYLAND_DISPLAY)) {
        spawn('xdg-open', [url], { detached: true, stdio: 'ignore' }).on('error', () => undefined).unref();
      }
    }));
}
