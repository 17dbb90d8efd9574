--[[
  rename(2) of an entry and its whole subtree in one step: renamePath in src/state/fs.ts.

  KEYS[1] fs:p:<path> of ARGV[2] (routes the script to the prefix's slot: include/fs.lua)
  ARGV[1] key prefix, ARGV[2] normalized path, ARGV[3] <to>, ARGV[4] <node>, ARGV[5] <mtimeNs>,
  ARGV[6] <nowMs>, ARGV[7] <st_ino>|''
  -> {entries moved, mtimeNs used}
     (st_ino: the inode number the mount showed for the path, which the entry keeps)
  Fails with ENOENT (no path, or no parent of to), EBUSY (to is '/'), EINVAL (to inside path),
  ENOTDIR (a directory over a non-directory, or to's parent not a directory), EISDIR (a
  non-directory over a directory), ENOTEMPTY (over a directory with names), EXDEV (a subtree of
  more than SUBTREE_MAX entries: mv copies instead), each with the path at fault.
]]
-- @include fail
-- @include fs
local path = ARGV[2]
local to, node, mtime = ARGV[3], ARGV[4], ARGV[5]
nowMs = ARGV[6]
local src = currentRecord(path)
if not src or path == '/' then return fail('ENOENT', path) end
if to == '/' then return fail('EBUSY', to) end
if path == to then return { 0, mtime } end
if string.sub(to, 1, #path + 1) == path .. '/' then return fail('EINVAL', to) end
local parent, pe = parentEntry(to)
if not pe then return fail('ENOENT', parent) end
if not isDirEntry(pe) then return fail('ENOTDIR', parent) end
local dst = entry(to)
local srcDir = src.f[1] == 'd'
-- to is another name of the same file: nothing happens (rename(2))
local dstRec = dst and string.sub(dst, 1, 1) == 'h' and currentRecord(to)
if dstRec and src.f[1] == 'h' and dstRec.f[11] == src.f[11] then return { 0, mtime } end
if dst then
  if srcDir and not isDirEntry(dst) then return fail('ENOTDIR', to) end
  if not srcDir and isDirEntry(dst) then return fail('EISDIR', to) end
  if isDirEntry(dst) and redis.call('HLEN', fsDirKey(to)) > 0 then return fail('ENOTEMPTY', to) end
end
-- the subtree, parents before children, as paths relative to `path`
local moves = { { rel = '', rec = src, vs = versions(path) } }
local i = 1
while i <= #moves do
  local m = moves[i]
  if m.rec.f[1] == 'd' then
    local kids = redis.call('HGETALL', fsDirKey(path .. m.rel))
    for k = 1, #kids, 2 do
      local rel = m.rel .. '/' .. kids[k]
      local vs = versions(path .. rel)
      moves[#moves + 1] = { rel = rel, rec = find(vs, tonumber(string.sub(kids[k + 1], 2))), vs = vs }
      if #moves > SUBTREE_MAX then return fail('EXDEV', path) end
    end
  end
  i = i + 1
end
-- A stamp that beats everything now at either end, for the tombstones. A moved entry keeps
-- its own mtime, as rename(2) does, where that still beats everything else at the target
-- (this node's mount stream there is replaced anyway); else it takes the stamp, so it wins.
for _, m in ipairs(moves) do
  mtime = maxnum(mtime, inc(m.rec.f[3]))
  local vs = versions(to .. m.rel)
  m.toVs = vs
  local there = winner(vs)
  if there then mtime = maxnum(mtime, inc(there.f[3])) end
  local other = winner(vs, node .. ' m')
  m.keep = not other or beats({ '', node, m.rec.f[3], '', '', '', '', 'm' }, other.f)
end
-- A moved directory keeps its mtime, as rename(2) has it: the time a name last came or went in
-- it moves with it (storing its names anew would make that now). So do the atimes reads gave.
for _, m in ipairs(moves) do
  if m.rec.f[1] == 'd' then m.dirTime = redis.call('HGET', K.fsDirTimes, path .. m.rel) end
  m.atime = redis.call('HGET', K.fsAccessTimes, path .. m.rel)
end
-- subscribers hear the two subtree roots, not every entry below them
quiet = true
for _, m in ipairs(moves) do
  local f = copy(m.rec.f)
  if not m.keep then f[3] = mtime end
  f[2], f[8], f[9] = node, 'm', nowMs
  store(to .. m.rel, f, m.toVs)
end
for k = #moves, 1, -1 do store(path .. moves[k].rel, tombstone(node, mtime), moves[k].vs) end
for _, m in ipairs(moves) do
  if m.dirTime then
    redis.call('HSET', K.fsDirTimes, to .. m.rel, m.dirTime)
  elseif m.rec.f[1] == 'd' then
    redis.call('HDEL', K.fsDirTimes, to .. m.rel)
  end
  if m.atime then redis.call('HSET', K.fsAccessTimes, to .. m.rel, m.atime) end
end
-- Each entry keeps its inode number, as rename(2) has it: the moved one the number the mount
-- showed (ARGV[7]), those below it theirs if a rename or link gave them one (others are
-- numbered by their path, and so take new ones). A hard link's is its inode's, kept there.
local kept = {}
for _, m in ipairs(moves) do
  kept[#kept + 1] = (m.rel == '' and ARGV[7] ~= '') and ARGV[7] or redis.call('HGET', K.fsStInos, path .. m.rel) or false
end
for k, m in ipairs(moves) do
  redis.call('HDEL', K.fsStInos, path .. m.rel)
  if kept[k] and m.rec.f[1] ~= 'h' then
    redis.call('HSET', K.fsStInos, to .. m.rel, kept[k])
  else
    redis.call('HDEL', K.fsStInos, to .. m.rel)
  end
end
-- the target's directory changed even where a name was replaced, not added
redis.call('HSET', K.fsDirTimes, parentOf(to), nowMs .. '000000')
quiet = false
publish(path)
publish(to)
-- the moved file's ctime moves, and that of one it replaced which has other names
if src.f[1] == 'h' then touchInode(src.f[11]) end
if dstRec then touchInode(dstRec.f[11]) end
return { #moves, mtime }
