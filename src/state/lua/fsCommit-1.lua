--[[
  Store a version of a path and recompute what it shows, with everything that means for the
  paths around it (implicit parents, sweeps below a directory that went away), in one step:
  commitVersion in src/state/fs.ts. The rules are include/fs.lua's.

  KEYS[1] fs:p:<path> of ARGV[2] (routes the script to the prefix's slot: include/fs.lua)
  ARGV[1] key prefix, ARGV[2] normalized path, ARGV[3] <record> (the wire form: include/fs.lua),
  ARGV[4] x|'' (x: EEXIST if it exists), ARGV[5] w|'' (w: new content written through a mount),
  ARGV[6] <lock session>|'', ARGV[7] t|''
  -> {id, current 0|1, published 0|1, mtimeNs, inode, links, st_ino}
     (inode and links: those of the hard-linked file the commit changed, else 0 and 0;
     st_ino as fsGet answers it)
     (t: a version even when it repeats the latest: a setattr that changes nothing
     still moves ctime)
     (published: an event went out for the path; not for a repeat of the latest version;
     a lock session: the commit is made under a lock of that session of the lock table,
     src/state/locks.ts, and fails with ENOLCK unless its lease still holds, by Redis'
     clock, so a mount that lost its locks never lands what it wrote under them)
  Fails with EINVAL <path> for '/', EEXIST <path> (x) when it exists, ENOLCK <path> (above), and
  ESTALE <path> for a file whose chunk list is not in fs:m (chunk list GC deleted it since the
  caller put it): put the chunk list again and retry.
]]
-- @include fail
-- @include fs
local path = ARGV[2]
if path == '/' then return fail('EINVAL', path) end
if ARGV[4] == 'x' and entry(path) then return fail('EEXIST', path) end
if ARGV[6] and ARGV[6] ~= '' then
  local t = redis.call('TIME')
  local lease = redis.call('ZSCORE', K.lockSessions, ARGV[6])
  if not lease or tonumber(lease) <= tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) then return fail('ENOLCK', path) end
end
local f = split(ARGV[3])
-- Only a commit brings a chunk list from outside; restore and rename copy one from a kept
-- version, and chunk list GC never deletes what a kept version names.
if f[1] == 'f' and redis.call('EXISTS', mkey(f[10])) == 0 then return fail('ESTALE', path) end
nowMs = f[9]
-- What the mount changes through a hard link it changes in the file, at its inode; so does a
-- node's translator through a link it made. Another export directory's file at the name stays
-- a version of the name: the name shows it when it wins.
local e = entry(path)
local at, named = path, e and string.sub(e, 1, 1) == 'h' and currentRecord(path)
if named and f[1] ~= 'd' and f[1] ~= 't' and (f[8] ~= 'e' or (named.f[8] == 'e' and named.f[2] == f[2])) then
  at = inodePath(named.f[11])
end
-- A change of attributes alone (chmod, chown, extended attributes: the same content, target and
-- mtime) made through the mount to another node's current version is a version of that
-- node's copy. As one of its own node's, it would tie with the copy it changes on mtime and
-- lose whenever its node's name sorts later.
local cur = f[8] == 'm' and (named and through(named) or currentRecord(path))
if cur and cur.f[2] ~= f[2] and cur.f[1] == f[1] and cur.f[3] == f[3] and cur.f[10] == f[10] and cur.f[11] == f[11] then
  f[2] = cur.f[2]
end
-- New content written through a mount is what the path holds from now on. Kept with an older
-- mtime (cp -p, tar, a clock behind) than another copy's, or a delete's, it would vanish
-- behind it at once: it takes the time just past that one's instead, as a rename does.
if ARGV[5] == 'w' and f[1] == 'f' then
  local other = winner(versions(at), f[2] .. ' m')
  if other and beats(other.f, f) then f[3] = inc(other.f[3]) end
end
local id, current = commit(at, f, ARGV[7] == 't')
-- Even when it repeats the latest version (rsync sets a directory's times when it makes it
-- and again when it has filled it), what the directory says of its mtime holds again.
if current and f[1] == 'd' then redis.call('HDEL', K.fsDirTimes, path) end
local ino = at ~= path and string.sub(at, 2)
return { id, current and 1 or 0, changed[path] and 1 or 0, f[3], ino or 0, ino and linkCount(ino) or 0,
  redis.call('HGET', K.fsStInos, ino and inodePath(ino) or path) or '' }
