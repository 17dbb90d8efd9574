/** Limits on everything that comes from outside. One place so docs and code agree. */
export const LIMITS = {
  /** A manifest file read by `apply -f` or posted to the API. */
  manifestBytes: 1024 * 1024,
  /** Documents in one manifest file. */
  manifestDocuments: 500,
  /** YAML aliases in one file: more than this is treated as an alias bomb. */
  yamlAliases: 100,
  /**
   * Nodes that aliases add to one YAML file once expanded. A few aliases can stand for
   * billions of nodes ("billion laughs"), so the count of aliases alone is no guard.
   */
  yamlAliasNodes: 10_000,
  /** Any JSON request body to the API. */
  apiBodyBytes: 2 * 1024 * 1024,
  /** One piece of a job's standard input, as POST /v1/jobs/:id/stdin takes it. */
  stdinPieceBytes: 1024 * 1024,
  /**
   * A job's standard input (`oswalk run -i`) kept whole in Redis, so that an attempt that starts
   * over reads it from the start. Past it the input is a pipe: what the job has read goes, the
   * sender is held back while the job is stdinWindowBytes behind, and the job cannot start over
   * (a retry or a move ends it failed: include/jobs.lua's requeue).
   */
  stdinReplayBytes: 16 * 1024 * 1024,
  /** How far a job may be behind its input, once that is a pipe, before the sender is held. */
  stdinWindowBytes: 4 * 1024 * 1024,
  /** A job's output kept in Redis: the newest this many bytes. */
  logBytes: 8 * 1024 * 1024,
  /**
   * How far a reader following a job may fall behind its output before the job is held back
   * (appendLog-1.lua): under logBytes, so that such a reader never loses any of it.
   */
  logReaderWindowBytes: 4 * 1024 * 1024,
  /** Names of nodes, jobs, services, mounts (DNS-label-like). */
  nameLength: 63,
  /** Items of a job's command or args, and the length of each (and of an env value). */
  argItems: 4096,
  argLength: 65536,
  /** Input files a job names for placement (spec.inputs): each costs a lookup at its submit. */
  jobInputs: 16,
  /**
   * A Job's completions (and parallelism) and a Service's replicas: each is a job record, all
   * made in one Lua step that holds Redis meanwhile.
   */
  completions: 10_000,
  replicas: 1_000,
  /** How long a client may take to send a request's headers, and the whole request, to the API or a chunk server. */
  requestHeadersMs: 10_000,
  requestMs: 30_000,
  /** activeDeadlineSeconds: ten years. */
  deadlineSeconds: 315_360_000,
} as const;
