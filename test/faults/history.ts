/**
 * The history of a fault run and its checker, after Jepsen: every job attempt writes when it
 * starts and when it ends (who, where, when) to a file on the host's local disk, which no fault
 * touches; the checker then looks at the history alone, whatever the timing was.
 *
 * History lines, one write(2) each with O_APPEND, so lines of concurrent jobs never mix:
 *
 *   <job> <attempt> <node> start <unix time, µs> <pid> <seconds it means to run>
 *   <job> <attempt> <node> end <unix time, µs> <pid>
 *   <job> <attempt> <node> overlap <unix time, µs> <earlier attempt> <its pid>
 *
 * An attempt that is killed (its guard fenced it, its agent died) has a start and no end: how
 * long it ran is not in the history. So every attempt also leaves its pid and the pid's start
 * time (/proc/<pid>/stat, field 22: a reused pid has another) in pids/<job>/<attempt>, and each
 * attempt, once it has logged its start, looks whether any other attempt of its job is still
 * alive; one that is gets an `overlap` line, the proof that the job ran twice at once. Every
 * node of the run is on this host, so /proc sees them all.
 */

/** The job every fault-run job runs (bash: $EPOCHREALTIME without a fork). Arguments: run dir, seconds to sleep. */
export const JOB_SCRIPT = `#!/bin/bash
h=$1
id=$OSWALK_JOB_ID a=$OSWALK_ATTEMPT n=$OSWALK_NODE
read -r -a me < /proc/$$/stat
d=$h/pids/$id
mkdir -p "$d"
echo "$$ \${me[21]}" > "$d/$a"
echo "$id $a $n start $EPOCHREALTIME $$ $2" >> "$h/history"
for f in "$d"/*; do
  b=\${f##*/}
  [ "$b" = "$a" ] && continue
  read -r p s < "$f" || continue
  [ -r "/proc/$p/stat" ] || continue
  read -r -a st 2>/dev/null < "/proc/$p/stat" || continue
  if [ "\${st[21]}" = "$s" ] && [ "\${st[2]}" != Z ] && [ "\${st[2]}" != X ]; then
    echo "$id $a $n overlap $EPOCHREALTIME $b $p" >> "$h/history"
  fi
done
sleep "$2"
echo "$id $a $n end $EPOCHREALTIME $$" >> "$h/history"
`;

export interface Attempt {
  id: string;
  attempt: number;
  node: string;
  /** µs since the epoch. */
  start: number;
  end?: number;
  pid: number;
  /** How long it means to run (s). */
  secs?: number;
}

export interface OverlapLine {
  id: string;
  attempt: number;
  node: string;
  at: number;
  other: number;
  otherPid: number;
}

export interface History {
  /** Per job, its attempts by attempt number. */
  jobs: Map<string, Map<number, Attempt>>;
  overlaps: OverlapLine[];
  /** Lines that make no sense (an end without a start, a start logged twice…): each a violation. */
  problems: string[];
}

/** "1712345678.123456" → µs. */
function micros(s: string): number {
  const [sec, frac = ''] = s.split('.');
  return Number(sec) * 1_000_000 + Number(frac.padEnd(6, '0').slice(0, 6));
}

export function parseHistory(text: string): History {
  const jobs = new Map<string, Map<number, Attempt>>();
  const overlaps: OverlapLine[] = [];
  const problems: string[] = [];
  const lines = text.split('\n');
  // What follows the last newline is a line a job is writing as we read (a job killed mid-way
  // cannot leave one: one write per line): it is read whole next time.
  lines.pop();
  for (const line of lines) {
    const f = line.split(' ');
    const [id, attemptS, node, what, at] = f;
    const attempt = Number(attemptS);
    if (f.length < 6 || !Number.isInteger(attempt) || !/^\d+\.\d+$/.test(at ?? '')) {
      problems.push(`malformed history line: ${JSON.stringify(line)}`);
      continue;
    }
    const t = micros(at);
    let byAttempt = jobs.get(id);
    if (!byAttempt) jobs.set(id, (byAttempt = new Map()));
    const a = byAttempt.get(attempt);
    if (what === 'start') {
      if (a) problems.push(`job ${id} attempt ${attempt} started twice (on ${a.node} and on ${node}): one token, two runs`);
      else byAttempt.set(attempt, { id, attempt, node, start: t, pid: Number(f[5]), ...(f[6] ? { secs: Number(f[6]) } : {}) });
    } else if (what === 'end') {
      if (!a) problems.push(`job ${id} attempt ${attempt} ended on ${node} without a start`);
      else if (a.end !== undefined) problems.push(`job ${id} attempt ${attempt} ended twice`);
      else if (a.node !== node || a.pid !== Number(f[5])) problems.push(`job ${id} attempt ${attempt} started on ${a.node} (pid ${a.pid}) and ended on ${node} (pid ${f[5]})`);
      else a.end = t;
    } else if (what === 'overlap') {
      overlaps.push({ id, attempt, node, at: t, other: Number(f[5]), otherPid: Number(f[6]) });
    } else {
      problems.push(`unknown history event: ${JSON.stringify(line)}`);
    }
  }
  return { jobs, overlaps, problems };
}

/** An attempt as a person reads it: `a1b2c3 #2 on node3 [12.345 s, 13.012 s]` (seconds from t0). */
export function describeAttempt(a: Attempt, t0Us: number): string {
  const s = (us: number) => `${((us - t0Us) / 1e6).toFixed(3)} s`;
  return `${a.id} #${a.attempt} on ${a.node} [${s(a.start)}, ${a.end === undefined ? 'killed' : s(a.end)}]`;
}

/**
 * What the history shows against "a job runs at most once at a time": every line that makes no
 * sense, every attempt that found an earlier one of its job still alive, and every attempt that
 * ended after a later one of its job had started. Empty: no violation.
 */
export function checkHistory(h: History, t0Us = 0): string[] {
  const out = [...h.problems];
  for (const o of h.overlaps) {
    const mine = h.jobs.get(o.id)?.get(o.attempt);
    const other = h.jobs.get(o.id)?.get(o.other);
    out.push(`job ${o.id}: attempt ${o.attempt} on ${o.node} started while attempt ${o.other} (pid ${o.otherPid}) was still alive`
      + ` (${mine ? describeAttempt(mine, t0Us) : '?'} vs ${other ? describeAttempt(other, t0Us) : '?'})`);
  }
  for (const [id, byAttempt] of h.jobs) {
    const attempts = [...byAttempt.values()].sort((x, y) => x.start - y.start);
    for (let i = 0; i < attempts.length; i++) {
      for (let j = i + 1; j < attempts.length; j++) {
        const [a, b] = [attempts[i], attempts[j]];
        if (a.end !== undefined && a.end > b.start) {
          out.push(`job ${id}: ${describeAttempt(a, t0Us)} ended after ${describeAttempt(b, t0Us)} started`);
        }
      }
      // Attempt numbers come from one counter in Redis: a later claim has a larger one.
      if (i > 0 && attempts[i].attempt < attempts[i - 1].attempt) {
        out.push(`job ${id}: attempt ${attempts[i].attempt} started after attempt ${attempts[i - 1].attempt}`);
      }
    }
  }
  return out;
}
