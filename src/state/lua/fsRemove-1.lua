--[[
  unlink(2) or rmdir(2) as a tombstone: removePath in src/state/fs.ts.

  KEYS[1] fs:p:<path> of ARGV[2] (routes the script to the prefix's slot: include/fs.lua)
  ARGV[1] key prefix, ARGV[2] normalized path, ARGV[3] <node>, ARGV[4] <mtimeNs>,
  ARGV[5] <nowMs>, ARGV[6] unlink|rmdir
  -> {id, mtimeNs used}
  Fails with EBUSY for '/', ENOENT when nothing is there, ENOTDIR (rmdir of a non-directory),
  ENOTEMPTY (rmdir of a directory with names), EISDIR (unlink of a directory), each <path>.
]]
-- @include fail
-- @include fs
local path = ARGV[2]
local node, mtime, kind = ARGV[3], ARGV[4], ARGV[6]
nowMs = ARGV[5]
if path == '/' then return fail('EBUSY', path) end
local cur = currentRecord(path)
if not cur then return fail('ENOENT', path) end
if kind == 'rmdir' then
  if cur.f[1] ~= 'd' then return fail('ENOTDIR', path) end
  if redis.call('HLEN', fsDirKey(path)) > 0 then return fail('ENOTEMPTY', path) end
elseif cur.f[1] == 'd' then
  return fail('EISDIR', path)
end
-- what the user saw is what goes, even when its mtime is ahead of our clock
mtime = maxnum(mtime, inc(cur.f[3]))
local id = commit(path, tombstone(node, mtime))
if cur.f[1] == 'h' then touchInode(cur.f[11]) end
redis.call('HDEL', K.fsStInos, path)
return { id, mtime }
