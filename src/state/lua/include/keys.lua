-- Key names built from the prefix (ARGV[1] of every script that includes this, the job, node and fs
-- scripts); mirrors src/state/keys.ts.
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
  -- the filesystem's (include/fs.lua)
  fsEvents = P .. 'fs:events',
  fsChunkListsRecent = P .. 'fs:mrecent',
  -- directory path -> ns when a name last came or went in it
  fsDirTimes = P .. 'fs:dt',
  -- directory path -> how many of its names are directories (its link count is 2 more), kept from
  -- the first time a get asked for it (subdirs in include/fs.lua); a directory not in it is counted then
  fsDirLinks = P .. 'fs:dn',
  -- path (a hard-linked file's: its inode's pseudo-path) -> ns of the last read that moved its atime
  -- (access), shown when later than its version's atime; a new version of it takes the atime along
  fsAccessTimes = P .. 'fs:at',
  -- path (an inode: #<n>) -> the st_ino it keeps: what its entry showed before a rename or link
  fsStInos = P .. 'fs:st',
  fsInodeSeq = P .. 'fs:ino',
  -- the lock table's (LK.sessions in include/locks.lua): a commit made under a lock checks its lease
  lockSessions = P .. 'lk:sessions',
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
local function ownersKey(kind) return P .. 'owners:' .. kind end
local function fsVersionsKey(path) return P .. 'fs:p:' .. path end
local function fsInodeNamesKey(ino) return P .. 'fs:in:' .. ino end
local function fsDirKey(path) return P .. 'fs:d:' .. path end
-- hex: the chunk list hash as hex (mkey in include/fs.lua has it as 32 raw bytes)
local function fsChunkListKey(hex) return P .. 'fs:m:' .. hex end

-- A wake-up list holds at most one token: a burst of events costs one wake-up.
local function wake(key)
  redis.call('LPUSH', key, '1')
  redis.call('LTRIM', key, 0, 0)
end
