/**
 * The job spec lives in src/api/jobs.ts. This file only keeps the import of WindowSize in
 * src/agent/runtime working while that folder is being changed on another branch; those
 * imports move to src/api/jobs.ts when it merges, and this file goes.
 */
import type { WindowSize } from '../api/jobs.js';

export type { WindowSize };
