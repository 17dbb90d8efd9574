/**
 * The CLI's errors that need no cluster (issue 23): it never hangs on, and never misreads, a
 * server that is not an answering OS Walk control plane (one that takes the connection and says
 * nothing gives up after the request timeout, one that answers as some other HTTP server does is
 * named as such, both with exit 3, not a hang or "not found"); and a word or flag that cannot be
 * right is one clear line and exit 2, before anything is sent.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { oswalk } from '../helpers/cli.js';

const EXIT_UNREACHABLE = 3;

describe('oswalk against a server that is not an answering control plane', () => {
  const sockets: Socket[] = [];
  const silent = createTcpServer((s) => sockets.push(s)); // takes the connection, never answers
  let http: Server;
  const port = (s: { address(): unknown }) => (s.address() as AddressInfo).port;

  before(async () => {
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    http = createHttpServer((req, res) => {
      if (req.url?.startsWith('/v1/jobs')) {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('404 page not found\n');
      } else {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html><body>hello</body></html>');
      }
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
    await new Promise((r) => http.close(r));
  });

  it('gives up on a server that never answers after --request-timeout, with exit 3', async () => {
    const t0 = Date.now();
    const r = await oswalk(['get', 'jobs', '--api', `http://127.0.0.1:${port(silent)}`, '--token', 't', '--request-timeout', '1s']);
    assert.equal(r.code, EXIT_UNREACHABLE, r.stderr);
    assert.match(r.stderr, /did not answer within 1s/);
    assert.ok(Date.now() - t0 < 15_000, `gave up in ${Date.now() - t0} ms`);
  });

  it('takes the timeout from OSWALK_REQUEST_TIMEOUT too, and a bad duration is a usage error', async () => {
    const r = await oswalk(['status', '--api', `http://127.0.0.1:${port(silent)}`, '--token', 't'], { env: { OSWALK_REQUEST_TIMEOUT: '500ms' } });
    assert.equal(r.code, EXIT_UNREACHABLE, r.stderr);
    assert.match(r.stderr, /did not answer within 0.5s/);
    const bad = await oswalk(['status', '--api', `http://127.0.0.1:${port(silent)}`, '--token', 't', '--request-timeout', 'soon']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /"soon" is not a duration/);
  });

  it('names another HTTP server as not a control plane, whether it answers 404 in plain text or 200 in HTML', async () => {
    const api = `http://127.0.0.1:${port(http)}`;
    const missing = await oswalk(['get', 'jobs', '--api', api, '--token', 't']);
    assert.equal(missing.code, EXIT_UNREACHABLE, missing.stderr);
    assert.match(missing.stderr, /is not an OS Walk control plane \(it answered HTTP 404 "404 page not found\\n"\)/);
    const html = await oswalk(['status', '--api', api, '--token', 't']);
    assert.equal(html.code, EXIT_UNREACHABLE, html.stderr);
    assert.match(html.stderr, /is not an OS Walk control plane .*where JSON was due/);
  });
});

describe('oswalk usage errors: one line, exit 2, nothing sent', () => {
  // An address nothing listens on: a command that tried to send would exit 3, not 2.
  const nowhere = ['--api', 'http://127.0.0.1:1', '--token', 't'];
  for (const [args, why] of [
    [['delete', 'pod', 'web'], /^error: "pod" is not a kind: use one of job, service, node, mount\n$/],
    [['delete'], /^error: name what to delete: `oswalk delete KIND NAME\.\.\.` or `oswalk delete -f FILE`\n$/],
    [['delete', 'job'], /^error: name what to delete/],
    [['get', 'manifests', 'Pod'], /^error: "Pod" is not a kind/],
    [['get', 'jobs', '--owner', 'sweep'], /^error: --owner "sweep" must be KIND\/NAME, e\.g\. Job\/sweep or svc\/web/],
    [['get', 'jobs', '--owner', 'pod/x'], /^error: "pod" is not a kind: use one of job, service\n/],
    [['control-plane', '--listen', 'nonsense'], /^error: --listen "nonsense" must be HOST:PORT/],
    [['agent', '--node', 'n1', '--redis', 'redis://127.0.0.1:1', '--cpus', '-1'], /^error: --cpus "-1" must be a number above 0/],
  ] as [string[], RegExp][]) {
    it(`oswalk ${args.join(' ')}`, async () => {
      const r = await oswalk([...args, ...nowhere]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, why);
    });
  }
});
