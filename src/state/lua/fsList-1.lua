--[[
  One page of a directory's index: listDirPage in src/state/fs.ts.

  KEYS[1] fs:p:<path> of ARGV[2] (routes the script to the prefix's slot: include/fs.lua)
  ARGV[1] key prefix, ARGV[2] normalized path, ARGV[3] <cursor>, ARGV[4] <count>
  -> {next cursor, name, value, ...}
     (one page of the directory's index, by HSCAN: a name there for the whole listing
     comes at least once, maybe twice; one that comes or goes meanwhile maybe. Next
     cursor '0': the listing is done. Pages keep each step short and each reply small
     however big the directory: a whole 100,000-name index in one reply held Redis and
     the reader's memory at once)
  Fails with ENOENT <path> when nothing is there, ENOTDIR <path> for anything not a directory.
]]
-- @include fail
-- @include fs
local path = ARGV[2]
if not isDirEntry(entry(path)) then
  if entry(path) then return fail('ENOTDIR', path) end
  return fail('ENOENT', path)
end
local page = redis.call('HSCAN', fsDirKey(path), ARGV[3], 'COUNT', ARGV[4])
local kv = page[2]
-- a hard link is listed as what its file is
for i = 2, #kv, 2 do
  if string.sub(kv[i], 1, 1) == 'h' then
    local cur = through(currentRecord(join(path, kv[i - 1])))
    if cur then kv[i] = cur.f[1] .. string.sub(kv[i], 2) end
  end
end
table.insert(kv, 1, page[1])
return kv
