/**
 * The wire form of a job's output, GET /v1/jobs/:id/logs: NDJSON, one LogLine a line. Its
 * producers (the route, and Lua's finish() for the end line) and its readers (the CLI, tests)
 * all take the shapes from here.
 * Plain types, and no schema: the route writes each line itself (a response schema does not apply
 * to a stream), and `oswalk run` reads them without loading the schema library at its start.
 */

/** One line of a log stream. Data is `text` when it is valid UTF-8 that JSON carries in fewer bytes than base64, else `b64`. */
export interface LogLine {
  /** Stream entry id, to follow again after (`?after=`). */
  id: string;
  /** out, err: the job's output; sys: what the API says of the output (bytes dropped); end: a LogEnd. */
  t: 'out' | 'err' | 'sys' | 'end';
  text?: string;
  b64?: string;
  attempt?: number;
}

/** The text of a log's end line: how the job ended. */
export interface LogEnd {
  state: 'succeeded' | 'failed' | 'cancelled';
  /** The program's exit code; null when it has none (killed by a signal, never started, lost). */
  exitCode: number | null;
  /** The signal that killed the program (SIGTERM...), when one did. */
  signal?: string;
  /** The agent's or the cluster's words when the program could not start, was killed or lost. */
  message: string;
  attempt: number;
  /** Where the last attempt ran ('' if none did). */
  node: string;
}
