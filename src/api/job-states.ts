/**
 * A job's states, apart from the schemas of jobs.ts: the CLI tells them apart at run time and
 * must not pay for loading the schema library to do so (see roles.ts).
 */
export const JOB_STATES = ['pending', 'scheduled', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const TERMINAL_STATES: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled']);
