--[[
  A read of a path: its atime moves as relatime has it: markAccessed in src/state/fs.ts.

  KEYS[1] fs:p:<path> of ARGV[2] (routes the script to the prefix's slot: include/fs.lua)
  ARGV[1] key prefix, ARGV[2] normalized path, ARGV[3] <nowNs>
  -> {1 when the atime moved else 0, the atime shown}
     (the atime moves to now when the atime shown is not after the mtime or ctime, or is a
     day old; kept apart from the versions in fs:at, so that a read is no new version; its
     event is `\0<atime> <path>`: only that path's atime changed, not its parent's listing
     nor anything below it)
  Fails with ENOENT <path> when nothing is there.
]]
-- @include fail
-- @include fs
local path = ARGV[2]
local nowNs = ARGV[3]
local cur = shown(path)
if not cur then return fail('ENOENT', path) end
local f = cur.f
local atime = atimeOf(f)
-- relatime (Linux's default): not after the mtime, nor the ctime (ms), or a day old
local due = numcmp(atime, f[3]) <= 0 or numcmp(atime, f[9] .. '000000') <= 0 or tonumber(nowNs) - tonumber(atime) >= 86400e9
if not due or numcmp(nowNs, atime) <= 0 then return { 0, atime } end
redis.call('HSET', K.fsAccessTimes, cur.ino and inodePath(cur.ino) or path, nowNs)
local names = cur.ino and redis.call('SMEMBERS', fsInodeNamesKey(cur.ino)) or { path }
for _, name in ipairs(names) do redis.call('PUBLISH', K.fsEvents, '\0' .. nowNs .. ' ' .. name) end
return { 1, nowNs }
