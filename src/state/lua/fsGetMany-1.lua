--[[
  What many paths show now, in one consistent step: getCurrentMany in src/state/fs.ts.

  KEYS[1] fs:p:<path> of ARGV[2] (routes the script to the prefix's slot: include/fs.lua)
  ARGV[1] key prefix, ARGV[2..] normalized paths
  -> {id or 0, record or '', subdirectories, inode, links, st_ino, ...}: fsGet-1.lua's answer
     for each path in turn, 0 and '' where nothing is
  Never fails.
]]
-- @include fs
local out = {}
for i = 2, #ARGV do appendShown(out, ARGV[i], shown(ARGV[i])) end
return out
