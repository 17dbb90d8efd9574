import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';

/**
 * GET `url` on a connection of its own (over HTTPS trusting only `ca`, when given) and answer
 * its status code, or undefined when it cannot connect: how a test waits for a server to serve
 * (`/readyz`, `/healthz`) without fetch, which trusts only the system's CAs.
 */
export function httpStatus(url: string, ca?: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const get = url.startsWith('https:') ? httpsGet : httpGet;
    get(url, { agent: false, ...(ca ? { ca } : {}) }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    }).on('error', () => resolve(undefined));
  });
}
