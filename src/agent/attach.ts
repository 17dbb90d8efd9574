import { timingSafeEqual } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex, Writable } from 'node:stream';
import {
  ATTACH_KEY_HEADER, ATTACH_PING_MS, ATTACH_UPGRADE, ATTACH_WINDOW_BYTES, Frame, frame, FrameReader, type AttachEnd,
} from '../api/attach.js';
import type { WindowSize } from '../api/jobs.js';
import { WindowSizeSchema } from '../api/jobs.js';
import { Value } from 'typebox/value';
import type { Logger } from '../util/log.js';
import { attachKeyOf } from '../util/attach-key.js';
import { drainedOrClosed } from '../util/net.js';

/**
 * Output a session keeps for its client until it attaches; past it the job waits, as a program
 * writing into a pipe nobody reads yet does.
 */
const EARLY_BYTES = 1024 * 1024;
/**
 * How long a session waits for its client, from the job's start (or end, for a quick job): the
 * client asks where the job runs and attaches within milliseconds. Past it the session is
 * given up: the job's output has gone to its log all along, which a client that could not reach
 * this node follows through the control plane instead.
 */
const ATTACH_WINDOW_MS = 5000;

export interface SessionHooks {
  /** A client attached: the log need not carry every byte for it any more. */
  attached(): void;
  /** The client went away before the job ended (closed, killed, cut off): the job is hung up, as sshd does. */
  hungUp(): void;
  /** The client is there (renewed while attached): the monitor would hang up a session nobody follows. */
  present(): Promise<void>;
  /** The session is over (ended and told, or given up): forget it. */
  gone(): void;
  log: Logger;
}

/**
 * The agent's end of one session (src/api/attach.ts): the job's output, straight to the client
 * attached, and the client's input, window sizes and presence straight to the job. Output comes
 * here as well as to the job's log (LogShipper), which keeps its tail for `oswalk logs`.
 */
export class AttachSession {
  private socket?: Duplex;
  private early: Buffer[] = [];
  private earlyBytes = 0;
  /** Output held back until a client attaches, or the session is given up. */
  private held: (() => void)[] = [];
  private givenUp = false;
  private result?: AttachEnd;
  private input?: { stdin?: Writable; resize?(size: WindowSize): void };
  private readonly window: NodeJS.Timeout;
  private timers: NodeJS.Timeout[] = [];

  constructor(readonly jobId: string, readonly attempt: number, private readonly keyHash: string, private readonly hooks: SessionHooks) {
    this.window = setTimeout(() => this.giveUp(), ATTACH_WINDOW_MS);
  }

  /** Whether `secret` is this session's (its SHA-256 is the spec's attachKey). */
  holds(secret: string): boolean {
    const a = Buffer.from(attachKeyOf(secret), 'hex');
    const b = Buffer.from(this.keyHash, 'hex');
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** Whether a client may attach now: none has, and the session is not over. */
  get open(): boolean {
    return !this.socket && !this.givenUp;
  }

  /** The job started: its input and terminal, to which the client's frames go from now on. */
  started(input: { stdin?: Writable; resize?(size: WindowSize): void }): void {
    this.input = input;
    this.socket?.resume();
  }

  /** Output of the job: a promise back means the job waits (the client reads slowly, or has not attached yet). */
  output(stream: 'stdout' | 'stderr', data: Buffer): Promise<void> | undefined {
    if (this.givenUp) return undefined;
    const [h, p] = frame(stream === 'stdout' ? Frame.stdout : Frame.stderr, data);
    if (!this.socket) {
      this.early.push(h, p);
      this.earlyBytes += p.length;
      return this.earlyBytes > EARLY_BYTES ? new Promise((r) => this.held.push(r)) : undefined;
    }
    // A client gone: the job is being hung up (hooks.hungUp), and its output goes to the log alone.
    if (this.socket.destroyed) return undefined;
    // One write (writev) for both, not a system call each.
    this.socket.cork();
    this.socket.write(h);
    this.socket.write(p);
    this.socket.uncork();
    if (this.socket.writableLength <= ATTACH_WINDOW_BYTES) return undefined;
    return drainedOrClosed(this.socket);
  }

  /**
   * The attempt is over: `end` once its report is in (how the job ended), without when the job
   * goes on elsewhere or the cluster ends it (the client reads that from the log). A client
   * not attached yet still gets everything when it does, within the window.
   */
  finish(end: AttachEnd): void {
    this.result = end;
    if (this.socket) this.close();
    else if (this.givenUp) this.hooks.gone();
  }

  /** Take a client that passed the handshake (serveAttach): what it missed first, then the job as it goes. */
  accept(socket: Duplex, head: Buffer): void {
    clearTimeout(this.window);
    this.socket = socket;
    (socket as { setNoDelay?(on: boolean): void }).setNoDelay?.(true);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${ATTACH_UPGRADE}\r\n\r\n`);
    for (const b of this.early) socket.write(b);
    this.early = [];
    this.earlyBytes = 0;
    for (const r of this.held.splice(0)) r();
    this.hooks.attached();
    const reader = new FrameReader();
    const take = (chunk: Buffer) => {
      try {
        for (const f of reader.push(chunk)) this.frame(f.type, f.payload);
      } catch (err) {
        this.hooks.log.warn({ err, job: this.jobId }, 'a session\'s client sent a broken frame: closing it');
        socket.destroy();
      }
    };
    // What came with the request is read as the rest is: after the job started.
    if (head.length) socket.unshift(head);
    socket.on('data', take);
    socket.on('error', () => undefined);
    socket.once('close', () => {
      for (const t of this.timers) clearInterval(t);
      if (!this.result) this.hooks.hungUp();
      this.hooks.gone();
    });
    // Input waits for the job to have started.
    if (!this.input) socket.pause();
    this.timers.push(setInterval(() => socket.write(frame(Frame.ping)[0]), ATTACH_PING_MS));
    const present = () => void this.hooks.present().catch(() => undefined);
    present();
    this.timers.push(setInterval(present, PRESENT_EVERY_MS));
    if (this.result) this.close();
  }

  private frame(type: number, payload: Buffer): void {
    const stdin = this.input?.stdin;
    if (type === Frame.input) {
      if (!stdin || stdin.writableEnded || stdin.destroyed) return;
      stdin.write(payload);
      if (stdin.writableLength > ATTACH_WINDOW_BYTES) {
        // The job reads slowly: so does the client's stream, and so its sender (TCP holds it).
        // Its input closed meanwhile (it exited, or closed it), what comes is dropped, as a pipe
        // without a reader would refuse it.
        const socket = this.socket!;
        socket.pause();
        void drainedOrClosed(stdin).then(() => socket.resume());
      }
    } else if (type === Frame.inputEnd) {
      if (stdin && !stdin.writableEnded) stdin.end();
    } else if (type === Frame.resize) {
      const size: unknown = JSON.parse(payload.toString());
      if (Value.Check(WindowSizeSchema, size)) this.input?.resize?.(size);
    } else {
      throw new Error(`a frame of unknown type ${type}`);
    }
  }

  private close(): void {
    const s = this.socket!;
    for (const t of this.timers) clearInterval(t);
    const [h, p] = frame(Frame.end, Buffer.from(JSON.stringify(this.result)));
    s.write(h);
    s.end(p);
    // Input still coming is no one's now: read and dropped, so that the client's end is seen;
    // a client that never closes its side is cut off.
    this.input = undefined;
    s.resume();
    setTimeout(() => s.destroy(), ATTACH_PING_MS * 5).unref();
  }

  private giveUp(): void {
    if (this.socket) return;
    this.givenUp = true;
    this.early = [];
    this.earlyBytes = 0;
    for (const r of this.held.splice(0)) r();
    if (this.result) this.hooks.gone();
  }
}

/** How often an attached client's presence is renewed (TERMINAL_CLIENT_GRACE_MS is 15 s). */
const PRESENT_EVERY_MS = 3000;

/**
 * The handshake (src/api/attach.ts), for the agent's HTTPS server and its Unix socket alike: an
 * upgrade request for a session of this node, with its secret, is given to the session; anything
 * else gets an HTTP error and the connection is closed.
 */
export function serveAttach(find: (jobId: string) => AttachSession | undefined) {
  return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const refuse = (status: number, reason: string, message: string) => {
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`);
    };
    socket.on('error', () => undefined);
    const url = new URL(req.url ?? '/', 'http://agent');
    const m = /^\/v1\/jobs\/([a-z0-9][-a-z0-9]{0,62})\/attach$/.exec(url.pathname);
    if (!m || req.headers.upgrade?.toLowerCase() !== ATTACH_UPGRADE) return refuse(404, 'Not Found', 'no such upgrade here');
    const session = find(m[1]);
    const attempt = Number(url.searchParams.get('attempt'));
    if (!session || session.attempt !== attempt) return refuse(404, 'Not Found', `no session of job ${m[1]} attempt ${attempt} runs on this node`);
    const secret = req.headers[ATTACH_KEY_HEADER];
    if (typeof secret !== 'string' || !session.holds(secret)) return refuse(401, 'Unauthorized', `not this session's key: job ${m[1]} takes the secret its client submitted it with`);
    if (!session.open) return refuse(409, 'Conflict', `job ${m[1]}'s session has a client already, or gave up waiting for one`);
    session.accept(socket, head);
  };
}

/**
 * The agent's Unix socket for sessions, which a client on the same kernel uses rather than the
 * TLS port (no encryption to pay on one machine): the same handshake, the same secret. Undefined
 * when the path is too long for a socket's address (108 bytes): clients then use the TLS port.
 */
export async function listenAttachSocket(path: string, onUpgrade: ReturnType<typeof serveAttach>, log: Logger): Promise<Server | undefined> {
  if (Buffer.byteLength(path) > 107) {
    log.warn({ path }, 'the state directory\'s path is too long for a Unix socket: sessions of clients on this machine use the TLS port');
    return undefined;
  }
  // A socket left by an agent that stopped without closing it (the state lock keeps out a live one).
  await rm(path, { force: true });
  const server = createServer((_req, res) => res.writeHead(404, { 'content-type': 'text/plain' }).end('sessions only: an upgrade to oswalk-attach\n'));
  server.on('upgrade', onUpgrade);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
