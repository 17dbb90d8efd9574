--[[
  What a path shows now: getCurrent in src/state/fs.ts.

  KEYS[1] fs:p:<path> of ARGV[2] (routes the script to the prefix's slot: include/fs.lua)
  ARGV[1] key prefix, ARGV[2] normalized path
  -> {id, record, subdirectories, inode, links, st_ino} or false when nothing is there
     (subdirectories: how many of a directory's names are directories, 0 for anything else;
     inode, links, st_ino: include/fs.lua)
     (a directory's mtime is shown moved to fs:dt[path] when that is later: the time a name
     last came or went in it; a commit of the directory clears it)
  Never fails.
]]
-- @include fs
local path = ARGV[2]
local cur = shown(path)
if not cur then return false end
return appendShown({}, path, cur)
