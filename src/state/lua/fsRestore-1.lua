--[[
  Make an old version current again: restoreVersion in src/state/fs.ts.

  KEYS[1] fs:p:<path> of ARGV[2] (routes the script to the prefix's slot: include/fs.lua)
  ARGV[1] key prefix, ARGV[2] normalized path, ARGV[3] <version id>, ARGV[4] <node>,
  ARGV[5] <nowNs>, ARGV[6] <nowMs>
  -> {id, record}
  Fails with ENOENT <path> (why) when no such version is kept, EINVAL <path> (why) for a delete
  or a hard link to a file no longer kept.
]]
-- @include fail
-- @include fs
local path = ARGV[2]
local vid, node, nowNs = ARGV[3], ARGV[4], ARGV[5]
nowMs = ARGV[6]
-- a hard link's versions are its file's, at the inode
local at = versionsAt(path, currentRecord(path))
local vs = versions(at)
local old = find(vs, tonumber(vid))
if not old then return fail('ENOENT', path .. ' (no version ' .. vid .. ' is kept: oswalk versions lists those that are)') end
local f = copy(old.f)
if f[1] == 't' then return fail('EINVAL', path .. ' (version ' .. vid .. ' is a delete: restore one with content)') end
if f[1] == 'h' and redis.call('EXISTS', fsVersionsKey(inodePath(f[11]))) == 0 then return fail('EINVAL', path .. ' (version ' .. vid .. ' is a hard link to a file no longer kept)') end
local best = winner(vs)
local mtime = maxnum(nowNs, inc(best.f[3]))
f[2], f[3], f[8], f[9] = node, mtime, 'r', nowMs
local id = commit(at, f)
return { id, encode(f) }
