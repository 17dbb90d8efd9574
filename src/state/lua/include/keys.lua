-- Key names built from the prefix (ARGV[1] of every job script); mirrors src/state/keys.ts.
-- All share the prefix's {hash tag}, so on Redis Cluster they live in the script's slot.
local P = ARGV[1]
local K = {
  all = P .. 'jobs:all',
  done = P .. 'jobs:done',
  pending = P .. 'jobs:pending',
  delayed = P .. 'jobs:delayed',
  seq = P .. 'jobs:seq',
  fence = P .. 'jobs:fence',
  results = P .. 'jobs:results',
  finished = P .. 'jobs:finished',
  tty = P .. 'jobs:tty',
  heartbeats = P .. 'heartbeats',
  cluster = P .. 'cluster',
  nodes = P .. 'nodes',
  room = P .. 'nodes:room',
  schedWake = P .. 'wake:scheduler',
}
local function jobKey(id) return P .. 'job:' .. id end
local function logKey(id) return P .. 'joblog:' .. id end
local function logSizesKey(id) return P .. 'joblogsz:' .. id end
local function stdinKey(id) return P .. 'jobin:' .. id end
local function clientKey(id) return P .. 'jobclient:' .. id end
local function nodeKey(n) return P .. 'node:' .. n end
local function nodeLeasesKey(n) return P .. 'leases:' .. n end
local function nodeQueueKey(n) return P .. 'nodequeue:' .. n end
local function nodeWakeKey(n) return P .. 'wake:node:' .. n end
local function nodeStopWakeKey(n) return P .. 'wake:node:' .. n .. ':stop' end
local function allocKey(n) return P .. 'alloc:' .. n end
local function ownerKey(kind, name) return P .. 'owner:' .. kind .. ':' .. name end
local function ownerJobsKey(kind, name) return P .. 'owner:' .. kind .. ':' .. name .. ':jobs' end

-- A wake-up list holds at most one token: a burst of events costs one wake-up.
local function wake(key)
  redis.call('LPUSH', key, '1')
  redis.call('LTRIM', key, 0, 0)
end
