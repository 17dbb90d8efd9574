import { readFileSync } from 'node:fs';
import { access, constants as fsConstants } from 'node:fs/promises';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Duplex } from 'node:stream';
import type { PeerCertificate } from 'node:tls';
import {
  ATTACH_KEY_HEADER, ATTACH_SILENCE_MS, ATTACH_WINDOW_BYTES, ATTACH_UPGRADE, ATTACH_WAIT_MS, attachPath, Frame, frame, FrameReader, type AttachEnd,
} from '../api/attach.js';
import type { AttachPoint, WindowSize } from '../api/jobs.js';
import { ApiError, type ApiClient } from './client.js';
import { drainedOrClosed } from '../util/net.js';
import { exitOfEnd, explainWaits, gathered, type FollowOptions, type FollowSink, type JobExit } from './follow.js';

/**
 * How a session went: its end; or `controlPlane` (no client attached: the job's whole output is
 * in its log, and its input goes through the control plane); or `shownThrough`, the attempt whose
 * output was shown before the stream was lost (the end is in the log).
 */
export type SessionResult = { exit: JobExit } | { controlPlane: true; why?: string } | { shownThrough: number };

/** Largest piece of input one frame carries. */
const INPUT_PIECE_BYTES = 256 * 1024;

/** The kernel this process runs on (a node's hostId): a node on the same one takes its session at its Unix socket. */
function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

export interface SessionOptions extends FollowOptions {
  sink: FollowSink;
  /** Send this process's standard input (-i). */
  stdin: boolean;
  /** The window size now, and a way to hear of changes (-t). */
  window?: { size(): WindowSize; onChange(listener: () => void): () => void };
  /** How to reach the node: by default its Unix socket when on this kernel, else its port; `tls` always its port. */
  via?: 'socket' | 'tls';
}

/**
 * A session's client (src/api/attach.ts): wait for the job to start, attach to its node, and
 * carry input, window sizes and output straight between this process and the job.
 */
export async function runSession(api: ApiClient, id: string, secret: string, opts: SessionOptions): Promise<SessionResult> {
  const stopExplaining = explainWaits(api, id, opts.sink);
  let point: AttachPoint;
  try {
    do point = await api.get<AttachPoint>(`/v1/jobs/${id}/attach?waitMs=${ATTACH_WAIT_MS}`);
    while (point.state === 'pending' || point.state === 'scheduled');
  } catch (err) {
    // The control plane went away while the job waited (restarted, failing over): following the
    // job through it rides that out, as `run` without a session does.
    if (err instanceof ApiError && err.status === 0) return { controlPlane: true, why: err.message };
    throw err;
  } finally {
    stopExplaining();
  }
  if (point.state !== 'running') return { controlPlane: true };
  const local = opts.via !== 'tls' && point.socket && point.hostId && point.hostId === bootId() && (await access(point.socket, fsConstants.W_OK).then(() => true, () => false));
  let socket: Duplex | undefined;
  const missed: string[] = [];
  // The node's Unix socket when this process shares its kernel and may open it, else (or when
  // that fails: an agent started again elsewhere) its port.
  for (const how of local ? ['socket', 'port'] as const : ['port'] as const) {
    try {
      socket = await connect(api, id, secret, point, how);
      break;
    } catch (err) {
      missed.push((err as Error).message);
    }
  }
  if (!socket) return { controlPlane: true, why: `cannot reach node ${point.node} for the session (${missed.join('; ')}): its input and output go through the control plane` };
  return await carry(socket, id, point.attempt, opts);
}

/** The handshake, at the node's Unix socket or at its port. */
async function connect(api: ApiClient, id: string, secret: string, point: AttachPoint, how: 'socket' | 'port'): Promise<Duplex> {
  const headers = { connection: 'Upgrade', upgrade: ATTACH_UPGRADE, [ATTACH_KEY_HEADER]: secret };
  const path = attachPath(id, point.attempt);
  let req: ClientRequest;
  if (how === 'socket') {
    req = httpRequest({ socketPath: point.socket, path, headers });
  } else if (point.agentUrl) {
    const url = new URL(path, point.agentUrl);
    req = url.protocol === 'https:'
      ? httpsRequest(url, {
        headers,
        // The cluster's CA alone, and the node's own certificate: its name, not its address, is what the cluster knows.
        ...(api.ca ? { ca: api.ca } : {}),
        checkServerIdentity: (_host: string, cert: PeerCertificate) => (cert.subject?.CN === point.node ? undefined : new Error(`the certificate is ${cert.subject?.CN}'s, not node ${point.node}'s`)),
      })
      : httpRequest(url, { headers });
  } else {
    throw new Error('it has no address');
  }
  return await new Promise<Duplex>((resolve, reject) => {
    const slow = setTimeout(() => req.destroy(new Error(`no answer within ${ATTACH_SILENCE_MS / 1000}s`)), ATTACH_SILENCE_MS);
    req.once('upgrade', (res, socket, head) => {
      clearTimeout(slow);
      if (head.length) socket.unshift(head);
      resolve(socket);
    });
    req.once('response', (res) => {
      clearTimeout(slow);
      let text = '';
      res.on('data', (d: Buffer) => { text += d.toString(); });
      res.once('end', () => reject(new Error(`HTTP ${res.statusCode}: ${text.trim()}`)));
    });
    req.once('error', (err) => {
      clearTimeout(slow);
      reject(err);
    });
    req.end();
  });
}

/** Carry the session until its end frame, or until the stream is lost. */
async function carry(socket: Duplex, id: string, attempt: number, opts: SessionOptions): Promise<SessionResult> {
  (socket as { setNoDelay?(on: boolean): void }).setNoDelay?.(true);
  const send = (type: number, payload?: Buffer): boolean => {
    const [h, p] = frame(type, payload);
    // One write (writev) for both, not a system call each.
    socket.cork();
    socket.write(h);
    socket.write(p);
    socket.uncork();
    return socket.writableLength <= ATTACH_WINDOW_BYTES;
  };
  // Input, as it comes, then its end; held while the job (through the stream) reads slower.
  if (opts.stdin) void (async () => {
    for await (const piece of gathered(process.stdin, INPUT_PIECE_BYTES)) {
      if (socket.destroyed) return;
      if (!send(Frame.input, piece)) await drainedOrClosed(socket);
    }
    if (!socket.destroyed) send(Frame.inputEnd);
  })().catch(() => undefined);
  const resized = () => void send(Frame.resize, Buffer.from(JSON.stringify(opts.window!.size())));
  const unwatch = opts.window?.onChange(resized);

  let heard = Date.now();
  let result: AttachEnd | undefined;
  const reader = new FrameReader();
  try {
    await new Promise<void>((resolve) => {
      const silence = setInterval(() => {
        if (Date.now() - heard > ATTACH_SILENCE_MS) socket.destroy(new Error(`nothing from the node for ${ATTACH_SILENCE_MS / 1000}s`));
      }, 500);
      socket.once('close', () => {
        clearInterval(silence);
        resolve();
      });
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => {
        heard = Date.now();
        let frames;
        try {
          frames = reader.push(chunk);
        } catch {
          return void socket.destroy();
        }
        for (const f of frames) {
          if (f.type === Frame.end) {
            result = JSON.parse(f.payload.toString()) as AttachEnd;
            continue;
          }
          if (f.type !== Frame.stdout && f.type !== Frame.stderr) continue;
          const wait = f.type === Frame.stdout ? opts.sink.out(f.payload) : opts.sink.err(f.payload);
          // A slow reader of our output holds the stream, and so the job, as a pipe would.
          if (wait) {
            socket.pause();
            void wait.then(() => socket.resume());
          }
        }
      });
    });
  } finally {
    unwatch?.();
    // What is left of our input is no one's: the session is over (its reader, `input`, ends
    // with it, or is left waiting on a destroyed stream: not awaited).
    if (opts.stdin) process.stdin.destroy();
  }
  if (result?.end) return { exit: exitOfEnd(id, result.end, opts, opts.sink) };
  return { shownThrough: attempt };
}

