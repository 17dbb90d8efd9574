--[[
  link(2): another name of a file: linkPath in src/state/fs.ts. The first link makes the
  file an inode (include/fs.lua).

  KEYS[1] fs:p:<path> of ARGV[2] (routes the script to the prefix's slot: include/fs.lua)
  ARGV[1] key prefix, ARGV[2] normalized path, ARGV[3] <to>, ARGV[4] <node>, ARGV[5] <nowNs>,
  ARGV[6] <nowMs>, ARGV[7] e|m, ARGV[8] <st_ino>|''
  -> {inode, link count}
     (st_ino: the number the mount showed for the file, which it keeps as an inode)
     (e: a link a node's export directory has, made by its translator; m: through a mount)
  Fails with ENOENT (no path, or no parent of to), EPERM (a directory), EEXIST (to exists),
  ENOTDIR (to's parent not a directory), each with the path at fault.
]]
-- @include fail
-- @include fs
local path = ARGV[2]
local to, node, nowNs, source = ARGV[3], ARGV[4], ARGV[5], ARGV[7]
nowMs = ARGV[6]
local src = currentRecord(path)
if not src or path == '/' then return fail('ENOENT', path) end
if src.f[1] == 'd' then return fail('EPERM', path) end
local parent, pe = parentEntry(to)
if not pe then return fail('ENOENT', parent) end
if not isDirEntry(pe) then return fail('ENOTDIR', parent) end
if entry(to) then return fail('EEXIST', to) end
local ino
if src.f[1] == 'h' then
  ino = src.f[11]
  touchInode(ino)
else
  -- The file becomes an inode: its current version moves there (committed now: its ctime
  -- moves), and its name becomes a link to it that beats what the name held.
  ino = tostring(redis.call('INCR', K.fsInodeSeq))
  local f = copy(src.f)
  f[8], f[9] = source, nowMs
  store(inodePath(ino), f, nil, true)
  -- the file keeps the number it showed, as link(2) has it (ARGV[8]: the mount's)
  local shownIno = ARGV[8] ~= '' and ARGV[8] or redis.call('HGET', K.fsStInos, path)
  if shownIno then redis.call('HSET', K.fsStInos, inodePath(ino), shownIno) end
  redis.call('HDEL', K.fsStInos, path)
  store(path, hardlink(node, inc(src.f[3]), ino, source))
end
-- the new name beats whatever was deleted there
local vs = versions(to)
local there = winner(vs)
local mtime = nowNs
if there then mtime = maxnum(mtime, inc(there.f[3])) end
store(to, hardlink(node, mtime, ino, source), vs)
return { ino, linkCount(ino) }
