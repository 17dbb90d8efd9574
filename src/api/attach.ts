/**
 * A session's direct stream: `oswalk run -i` and `-t` talk to the agent that runs their job,
 * over one connection (the node's TLS port, or its Unix socket when the client shares the node's
 * kernel), instead of through the control plane and Redis, as ssh talks to sshd. What both ends
 * and the control plane's GET /v1/jobs/:id/attach share: the frames, the handshake, the answer
 * that says where a session's job runs. Plain code, no schema library: `oswalk run` loads it at its start.
 *
 * The handshake is an HTTP/1.1 upgrade: `GET /v1/jobs/<id>/attach?attempt=N` with
 * `Connection: Upgrade`, `Upgrade: oswalk-attach` and the session's secret in ATTACH_KEY_HEADER;
 * the agent answers 101 and frames follow both ways. The secret is the client's own: its SHA-256
 * is in the job's spec (attachKey), so neither the control plane nor Redis ever holds it.
 */
import type { LogEnd } from './logs.js';

export const ATTACH_UPGRADE = 'oswalk-attach';
export const ATTACH_KEY_HEADER = 'x-oswalk-attach-key';

/** The path of the upgrade request to the agent. */
export const attachPath = (id: string, attempt: number) => `/v1/jobs/${id}/attach?attempt=${attempt}`;


/** The longest GET /v1/jobs/:id/attach waits for its job to start (under the API's request timeout). */
export const ATTACH_WAIT_MS = 20_000;

/**
 * A frame: one byte of type, four of length (little-endian), then the payload; the framing of
 * `oswalk shell`'s own wire too (src/cli/shell/oswalk-exec.c), whose reader is this one.
 * Client to agent: input data, input end, a new window size (JSON WindowSize).
 * Agent to client: stdout, stderr, a keepalive each ATTACH_PING_MS, and the end (JSON AttachEnd),
 * after which the agent closes the stream.
 */
export const Frame = {
  input: 0x69, // i
  inputEnd: 0x65, // e
  resize: 0x77, // w
  stdout: 0x6f, // o
  stderr: 0x72, // r
  ping: 0x70, // p
  end: 0x78, // x
} as const;

/** How often the agent says it is there; a client that hears nothing for ATTACH_SILENCE_MS takes the stream for lost. */
export const ATTACH_PING_MS = 1000;
export const ATTACH_SILENCE_MS = 5000;

/**
 * How the attempt ended: `end` once the job has (the same end line its log has); without it, the
 * job goes on elsewhere or is being ended by the cluster (moved, or its report refused), and
 * the client learns the rest from the log.
 */
export interface AttachEnd {
  end?: LogEnd;
}

/**
 * Bytes either end lets wait in a stream (or in the job's input pipe) before it holds its writer
 * back: a stream's own mark (16 KiB) would stop and start the job at every 64 KiB read.
 */
export const ATTACH_WINDOW_BYTES = 1024 * 1024;

const HEADER = 5;

/** A frame's bytes: its header, then its payload (two buffers, written one after the other). */
export function frame(type: number, payload: Buffer = Buffer.alloc(0)): [Buffer, Buffer] {
  const h = Buffer.allocUnsafe(HEADER);
  h[0] = type;
  h.writeUInt32LE(payload.length, 1);
  return [h, payload];
}

/** The largest payload either end takes: more is a broken or hostile peer. */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;

/** Frames out of a byte stream, as its chunks arrive (a frame's pieces are joined once, when it is whole). */
export class FrameReader {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private need = HEADER;

  /** maxBytes: the largest payload taken; more is a broken or hostile peer. */
  constructor(private readonly maxBytes = MAX_FRAME_BYTES) {}

  /** The whole frames these bytes complete; throws on a payload over maxBytes. */
  push(chunk: Buffer): { type: number; payload: Buffer }[] {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    const out: { type: number; payload: Buffer }[] = [];
    if (this.bytes < this.need) return out;
    let buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    this.need = HEADER;
    while (buf.length >= HEADER) {
      const len = buf.readUInt32LE(1);
      if (len > this.maxBytes) throw new Error(`a frame of ${len} bytes (at most ${this.maxBytes})`);
      if (buf.length < HEADER + len) {
        this.need = HEADER + len;
        break;
      }
      out.push({ type: buf[0], payload: buf.subarray(HEADER, HEADER + len) });
      buf = buf.subarray(HEADER + len);
    }
    this.chunks = buf.length ? [buf] : [];
    this.bytes = buf.length;
    return out;
  }
}
