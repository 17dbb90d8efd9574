import Dockerode from 'dockerode';
import { posix } from 'node:path';
import type { Duplex, Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pack } from 'tar-stream';
import type { Logger } from '../../util/log.js';
import { failedStart, guardOutput, jobEnv, within } from './common.js';
import { GUARD_PATH, guarded } from './guard.js';
import type { HostOwner, OnOutput, RunHandle, RunResult, RunSpec, Runtime } from './types.js';
import type { WindowSize } from '../../api/jobs.js';

export interface DockerRuntimeOptions {
  logger: Logger;
  /** Default: the engine of DOCKER_HOST or /var/run/docker.sock. */
  docker?: Dockerode;
  /** docker stop's timeout: SIGTERM, then SIGKILL after this long. */
  killGraceMs?: number;
  /**
   * 'never' (default): a missing image is the job's error; images are built or loaded on the
   * node beforehand (`docker build`, `docker load`), as an air-gapped cluster needs.
   * 'missing': try one pull, bounded by pullTimeoutMs, when the image is not on the node.
   */
  pull?: 'never' | 'missing';
  pullTimeoutMs?: number;
}

/** Where the unified filesystem appears inside every job container. */
export const CLUSTER_PATH = '/cluster';
/** Where the directory holding the cluster mount is bound; CLUSTER_PATH is a symlink into it. */
export const SHARE_PATH = '/.oswalk';

export const LABEL_CLUSTER = 'oswalk.cluster';
export const LABEL_NODE = 'oswalk.node';
export const LABEL_JOB = 'oswalk.job';
export const LABEL_ATTEMPT = 'oswalk.attempt';

const DRAIN_MS = 2000;

/**
 * Runs a job as a container through dockerode: create (labelled with node, job and attempt),
 * attach, start, wait, remove. Output goes through as it comes, frame by frame; the engine
 * keeps no log of its own (log driver none) because the agent is the job's logger.
 */
export class DockerRuntime implements Runtime {
  readonly name = 'docker' as const;
  readonly docker: Dockerode;

  constructor(private readonly opts: DockerRuntimeOptions) {
    this.docker = opts.docker ?? new Dockerode();
  }

  async start(spec: RunSpec, onOutput: OnOutput): Promise<RunHandle> {
    const log = this.opts.logger.child({ jobId: spec.jobId, attempt: spec.attempt, runtime: 'docker' });
    if (spec.command.length === 0) return failedStart({ exitCode: null, error: 'command is empty' });
    if (!spec.image) return failedStart({ exitCode: null, error: `the job names no image and node ${spec.node} has no default image: set the job's image, or start the agent (or the control plane) with --default-image` });
    let workingDir = spec.workingDir;
    if (workingDir && !workingDir.startsWith('/')) {
      if (!spec.clusterMount) return failedStart({ exitCode: null, error: `working dir "${workingDir}" is relative and the job has no cluster mount to resolve it under` });
      workingDir = posix.join(CLUSTER_PATH, workingDir);
    }
    const image = await this.ensureImage(spec.image, spec.node);
    if ('error' in image) return failedStart({ exitCode: null, error: image.error });

    const container = await this.docker.createContainer(this.createOptions(spec, workingDir, image.entrypoint)).catch((err: Error) => {
      throw new Error(`creating the container of job ${spec.jobId} on node ${spec.node} failed: ${err.message}`);
    });
    const remove = () => container.remove({ force: true }).catch((err: { statusCode?: number }) => {
      if (err.statusCode !== 404) log.warn({ err, container: container.id }, 'container not removed');
    });
    if (spec.clusterMount) {
      await container.putArchive(await clusterLinkTar(posix.basename(spec.clusterMount)), { path: '/' }).catch(async (err: Error) => {
        await remove();
        throw new Error(`linking /cluster in the container of job ${spec.jobId} failed: ${err.message}`);
      });
    }

    // Attach before start, or the first output of a short job is lost. With standard input the
    // connection is hijacked: one socket both ways, ended to close the job's stdin (StdinOnce).
    const stream = (await container.attach({ stream: true, stdout: true, stderr: true, ...(spec.stdin ? { stdin: true, hijack: true } : {}) }).catch(async (err: Error) => {
      await remove();
      throw new Error(`attaching to the container of job ${spec.jobId} failed: ${err.message}`);
    })) as unknown as Duplex;
    const emit = guardOutput(onOutput, (err) => log.error({ err }, 'output callback threw; later output of this job is dropped where it throws'), [stream]);
    const ended = new Promise<void>((res) => {
      stream.once('end', res);
      stream.once('close', res);
      stream.once('error', () => res());
    });
    // The guard tells an exec failure on stderr (its exit code alone is the job's to use too).
    // A Tty container has one stream, the terminal's, not docker's frames.
    let stderrTail = '';
    if (spec.tty) {
      stream.on('data', (data: Buffer) => {
        stderrTail = (stderrTail + data.toString('latin1')).slice(-512);
        emit('stdout', data);
      });
    } else {
      demux(stream, (kind, data) => {
        if (kind === 'stderr') stderrTail = (stderrTail + data.toString('latin1')).slice(-512);
        emit(kind, data);
      });
    }

    try {
      await container.start();
    } catch (err) {
      stream.destroy();
      await remove();
      return failedStart(startError(err as Error, spec));
    }
    log.debug({ container: container.id }, 'container started');
    // The engine sizes a container's terminal only once it runs (ConsoleSize at create needs API
    // 1.42; Debian 12's engine speaks 1.41): the guard waits for this first size before the job starts.
    const resize = (size: WindowSize) => void container.resize({ h: size.rows, w: size.cols }).catch((err: Error) => log.debug({ err }, 'terminal resize failed'));
    if (spec.tty) resize(spec.tty);

    let killReason: string | undefined;
    const done = (async (): Promise<RunResult> => {
      try {
        const { StatusCode } = (await container.wait()) as { StatusCode: number };
        await within(ended, DRAIN_MS);
        const info = await container.inspect().catch(() => undefined);
        const result: RunResult = { exitCode: StatusCode };
        const execFailed = (StatusCode === 127 || StatusCode === 126) && /oswalk: command "(.*)" (not found|is not executable)\r?\n$/.exec(stderrTail);
        if (killReason) result.error = `killed: ${killReason}`;
        else if (execFailed) result.error = `command "${execFailed[1]}" ${execFailed[2]} in image "${spec.image}"`;
        else if (info?.State.OOMKilled) result.error = `out of memory: the job exceeded its memory limit of ${spec.memoryBytes} bytes`;
        return result;
      } catch (err) {
        return { exitCode: null, error: killReason ? `killed: ${killReason}` : `lost container ${container.id.slice(0, 12)}: ${(err as Error).message}` };
      } finally {
        stream.destroy();
        await remove();
      }
    })();

    return {
      wait: () => done,
      // The engine reads the container's cgroup; one-shot: without it, the call waits for a
      // second sample (about a second) to fill in fields the agent does not use.
      cpuSeconds: async () => {
        const stats = await container.stats({ stream: false, 'one-shot': true }).catch(() => undefined);
        const ns = stats?.cpu_stats?.cpu_usage?.total_usage;
        return typeof ns === 'number' ? ns / 1e9 : undefined;
      },
      ...(spec.stdin ? { stdin: stream } : {}),
      ...(spec.tty ? { resize } : {}),
      kill: async (reason: string) => {
        if (!killReason) {
          killReason = reason;
          log.info({ reason }, 'stopping container');
          const graceMs = this.opts.killGraceMs ?? 10_000;
          // 304: already stopped; 404: already gone. Either way the job is over.
          const over = (err: { statusCode?: number }) => {
            if (err.statusCode !== 304 && err.statusCode !== 404 && err.statusCode !== 409) throw err;
          };
          if (spec.tty) {
            // A terminal session ends as a closed ssh connection ends it: a hang-up, then, after
            // the grace period, a kill (the guard passes the hang-up on to the job).
            await container.kill({ signal: 'SIGHUP' }).catch(over);
            await within(done, graceMs);
            await container.stop({ t: 0 }).catch(over);
          } else {
            await container.stop({ t: Math.ceil(graceMs / 1000) }).catch(over);
          }
        }
        await done;
      },
    };
  }

  private createOptions(spec: RunSpec, workingDir: string | undefined, entrypoint: string[]): Dockerode.ContainerCreateOptions {
    return {
      Image: spec.image,
      // The guard is the container's PID 1 (the image's own entrypoint runs under it): it kills
      // the container's processes when the node's fence passes, even with the agent frozen,
      // cut off or gone (docker-compose kill of an agent container), and reaps and forwards
      // signals as docker --init does.
      Entrypoint: guarded(posix.join(GUARD_PATH, 'oswalk-guard'), posix.join(GUARD_PATH, 'fence'), entrypoint),
      Cmd: spec.command,
      Env: Object.entries(jobEnv({ ...spec, clusterMount: spec.clusterMount ? CLUSTER_PATH : undefined, env: { ...logicalPwd(workingDir), ...spec.env } }))
        .map(([k, v]) => `${k}=${v}`),
      WorkingDir: workingDir,
      // A name people can find in `docker ps`; the labels, not the name, are how the agent finds
      // its containers again. The attempt keeps a retry clear of a leftover of the last one.
      name: containerName(spec),
      Labels: { [LABEL_CLUSTER]: spec.cluster, [LABEL_NODE]: spec.node, [LABEL_JOB]: spec.jobId, [LABEL_ATTEMPT]: String(spec.attempt) },
      AttachStdout: true,
      AttachStderr: true,
      AttachStdin: !!spec.stdin,
      OpenStdin: !!spec.stdin,
      StdinOnce: !!spec.stdin,
      Tty: !!spec.tty,
      HostConfig: {
        NanoCpus: spec.cpus ? Math.round(spec.cpus * 1e9) : undefined,
        // Swap equal to memory: the limit is a hard one, as in the process runtime.
        Memory: spec.memoryBytes,
        MemorySwap: spec.memoryBytes,
        LogConfig: { Type: 'none', Config: {} },
        // rslave: a mount made (or remade) on the host after the container started shows up.
        // Read-only: only the mount below it is the job's to write.
        Mounts: [
          { Type: 'bind', Source: spec.fenceDir, Target: GUARD_PATH, ReadOnly: true },
          ...(spec.clusterMount
            ? [{ Type: 'bind' as const, Source: posix.dirname(spec.clusterMount), Target: SHARE_PATH, ReadOnly: true, BindOptions: { Propagation: 'rslave' as const } }]
            : []),
        ],
        // "privileged" means "may mount FUSE": full --privileged is refused on hosts like ours
        // (no writable /sys, restricted devices) and is far more than FUSE needs.
        CapAdd: spec.privileged ? ['SYS_ADMIN'] : undefined,
        Devices: spec.privileged ? [{ PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' }] : undefined,
      },
    };
  }

  /** Remove every container of this cluster's `node` whose job is not in keep; the job ids removed. */
  async cleanup({ cluster, node }: HostOwner, keepJobIds: Set<string>): Promise<string[]> {
    const containers = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL_CLUSTER}=${cluster}`, `${LABEL_NODE}=${node}`] } });
    const stopped = new Set<string>();
    await Promise.all(containers.map(async (c) => {
      const job = c.Labels[LABEL_JOB];
      if (keepJobIds.has(job)) return;
      this.opts.logger.warn({ jobId: job, container: c.Id, node }, 'removing orphaned container');
      await this.docker.getContainer(c.Id).remove({ force: true }).catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 404) throw err;
      });
      stopped.add(job);
    }));
    return [...stopped];
  }

  /** The image's entrypoint when it is on the node (perhaps after a pull), else the job's error. */
  private async ensureImage(image: string, node: string): Promise<{ entrypoint: string[] } | { error: string }> {
    const entrypoint = async () => ({ entrypoint: ((await this.docker.getImage(image).inspect()) as { Config?: { Entrypoint?: string[] | null } }).Config?.Entrypoint ?? [] });
    try {
      return await entrypoint();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
    const notFound = `image "${image}" not found on node ${node}: build or load it first (docker images)`;
    if ((this.opts.pull ?? 'never') === 'never') return { error: notFound };
    const timeoutMs = this.opts.pullTimeoutMs ?? 30_000;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    try {
      const stream = (await this.docker.pull(image, { abortSignal: abort.signal })) as Readable;
      await new Promise<void>((res, rej) => {
        abort.signal.addEventListener('abort', () => { stream.destroy(); rej(new Error(`timed out after ${timeoutMs} ms`)); });
        this.docker.modem.followProgress(stream, (err: Error | null) => (err ? rej(err) : res()));
      });
    } catch (err) {
      return { error: `${notFound}; pulling it failed: ${abort.signal.aborted ? `timed out after ${timeoutMs} ms` : (err as Error).message.trim()}` };
    } finally {
      clearTimeout(timer);
    }
    return entrypoint();
  }
}

/** oswalk-<cluster>-<job>-<attempt>, with what docker refuses in a name ([^a-zA-Z0-9_.-]) as '-'. */
export function containerName({ cluster, jobId, attempt }: Pick<RunSpec, 'cluster' | 'jobId' | 'attempt'>): string {
  return `oswalk-${cluster}-${jobId}-${attempt}`.replace(/[^a-zA-Z0-9_.-]/g, '-');
}

/**
 * A tar of one entry, the symlink CLUSTER_PATH → SHARE_PATH/<name>. Binding the cluster mount
 * itself would give the container a copy of that one mount, dead once the FS process restarts;
 * the directory above it, bound rslave, follows the remount.
 */
function clusterLinkTar(name: string): Promise<Buffer> {
  const p = pack();
  p.entry({ name: CLUSTER_PATH.slice(1), type: 'symlink', linkname: posix.join(SHARE_PATH, name), mode: 0o777 });
  p.finalize();
  return buffer(p);
}
/**
 * The engine enters a working dir below /cluster through the symlink, so getcwd() names it
 * below SHARE_PATH; PWD keeps the name the job asked for, which shells and most programs show.
 */
function logicalPwd(workingDir: string | undefined): Record<string, string> {
  return workingDir && (workingDir === CLUSTER_PATH || workingDir.startsWith(`${CLUSTER_PATH}/`)) ? { PWD: workingDir } : {};
}

/** A failed `docker start`, told in the job's terms, with a shell's exit codes. */
function startError(err: Error, spec: RunSpec): RunResult {
  const msg = (err as { json?: { message?: string } }).json?.message ?? err.message;
  const cmd = JSON.stringify(spec.command[0]);
  if (/executable file not found|no such file or directory/i.test(msg) && !/chdir/i.test(msg)) {
    return { exitCode: 127, error: `command ${cmd} not found in image "${spec.image}"` };
  }
  if (/permission denied/i.test(msg) && !/chdir/i.test(msg)) return { exitCode: 126, error: `command ${cmd} is not executable in image "${spec.image}"` };
  return { exitCode: null, error: `container did not start: ${msg}` };
}

/**
 * Docker's multiplexed stream: frames of an 8-byte header (stream type, 4-byte big-endian
 * length) and a payload. Payload bytes go out as they arrive, so no frame, however long, is
 * ever held whole; only a split header waits for its remaining bytes.
 */
function demux(stream: Readable, emit: (stream: 'stdout' | 'stderr', data: Buffer) => void): void {
  let header = Buffer.alloc(0);
  let kind: 'stdout' | 'stderr' = 'stdout';
  let remaining = 0;
  stream.on('data', (chunk: Buffer) => {
    let off = 0;
    while (off < chunk.length) {
      if (remaining === 0) {
        const need = 8 - header.length;
        header = Buffer.concat([header, chunk.subarray(off, off + need)]);
        off += Math.min(need, chunk.length - off);
        if (header.length < 8) return;
        kind = header[0] === 2 ? 'stderr' : 'stdout';
        remaining = header.readUInt32BE(4);
        header = Buffer.alloc(0);
        continue;
      }
      const n = Math.min(remaining, chunk.length - off);
      emit(kind, chunk.subarray(off, off + n));
      off += n;
      remaining -= n;
    }
  });
}
