--[[
  Every kept version of a path, and which of them wins: listVersions in src/state/fs.ts.

  KEYS[1] fs:p:<path> of ARGV[2] (routes the script to the prefix's slot: include/fs.lua)
  ARGV[1] key prefix, ARGV[2] normalized path (or an inode's pseudo-path #<n>),
  ARGV[3] stored|''
  -> {winner id or 0, id, record, ...}
     (those of a hard link's inode, unless `stored`: those stored at the path)
  Never fails.
]]
-- @include fs
local path = ARGV[2]
-- a hard link's are its file's, at the inode
local at = versionsAt(path, ARGV[3] ~= 'stored' and not isInode(path) and currentRecord(path))
local vs = versions(at)
local best = winner(vs)
local out = { best and best.id or 0 }
for _, v in ipairs(vs) do
  out[#out + 1] = tostring(v.id)
  out[#out + 1] = encode(v.f)
end
return out
