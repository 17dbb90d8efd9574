--[[
  The filesystem namespace's rules, shared by its scripts (fsCommit-1.lua, fsGet-1.lua,
  fsGetMany-1.lua, fsVersions-1.lua, fsList-1.lua, fsRemove-1.lua, fsRestore-1.lua,
  fsRename-1.lua, fsAccess-1.lua, fsLink-1.lua), so that the rules (winner, parent index,
  implicit parents, sweeps below a deleted directory, history bound) exist once. See
  src/state/fs.ts for the model; this is its only implementation (test/fsmeta/pick-current.ts
  restates the winner rule in TypeScript, for the tests that check these scripts against it).

  Every fs script takes KEYS[1] fs:p:<path> of ARGV[2] (routes the script to the prefix's slot;
  every other key is built from the prefix, by include/keys.lua, and so shares that slot),
  ARGV[1] the key prefix and ARGV[2] the normalized path.
  A record on the wire is `type|node|mtimeNs|size|mode|uid|gid|source|committedAt|chunkListHash|xattrs|target`,
  with type f(ile) d(ir) l(ink) s(pecial: a fifo, socket or device, whose size field holds its
  device number) t(ombstone) h(ard link, whose target is an inode number) and source e(xport) m(ount) r(estore), chunkListHash and
  xattrs (the extended attributes, encoded by src/state/xattrs.ts; opaque here) in hex; target
  is last so it may hold any byte. mtimeNs is a decimal string without leading zeros, '-' first before
  1970: Lua numbers are doubles and lose nanoseconds, so mtimes are compared as strings (sign,
  then length, then bytes: numcmp).
  A version whose atime differs from its mtime (utimensat) carries it in the same field,
  `<mtimeNs>/<atimeNs>`, on the wire and stored; in here it is field 13 ('' when the same), so
  that every rule on field 3 sees the mtime alone.
  Hard links. link() makes the file an inode: its versions move to the pseudo-path `#<n>`
  (stored at fs:p:#<n>, n from fs:ino), and each of its names holds an `h` version naming n.
  Every rule above applies at the names (which name wins at a path, deletes, renames) and at
  the inode (which version of the file wins); get, a commit through the mount, versions and
  restore of a name reach through it to the inode. fs:in:<n> holds the names it was given; its
  link count is how many of them are still current links to it. The inode is kept while any
  kept version names it; chunk list GC deletes it after (src/state/chunk-list-gc.ts), so every
  step that writes an `h` version marks `#<n>` in fs:mrecent. A link the translator made (an `h`
  version of a node's export stream) is that node's export directory's: its translator's later
  versions of the file at either name are the inode's too, as the mount's are.
  get and getmany answer, after the subdirectories, the inode number and link count of a
  hard-linked file (0 and 0 for anything else), then the st_ino a rename or link carried to the
  path or inode ('' for none: the mount numbers it by its path), kept in fs:st (appendShown).
  Nothing here fails: a script that can fail says with which errnos, as `<ERRNO> <path>` (fail()).
]]

-- Key names: include/keys.lua's (K.fs*, K.lockSessions, fs*Key), the one table of them that
-- mirrors src/state/keys.ts; mkey (fs:m:<hash> of the raw hash) is below, with tohex.
-- @include keys

local nowMs = '0' -- committedAt of the versions a step adds besides the one it was given
local HISTORY = 20        -- versions kept per node and stream per path
local SUBTREE_MAX = 5000  -- entries one rename (or delete sweep) may touch: a few hundred ms of Redis time; more gets EXDEV, and mv copies

-- a hard-linked file's inode, as the pseudo-path its versions live at
local function isInode(p) return string.sub(p, 1, 1) == '#' end
-- Where the versions of hard-linked file number `ino` are kept, as a path.
local function inodePath(ino) return '#' .. ino end

local function parentOf(p)
  local i = string.match(p, '^.*()/')
  local parent = string.sub(p, 1, i - 1)
  if parent == '' then parent = '/' end
  return parent, string.sub(p, i + 1)
end

local function join(dir, name)
  if dir == '/' then return '/' .. name end
  return dir .. '/' .. name
end

-- Byte order, not strcoll: redis-server sets LC_COLLATE from the environment, and every
-- node must reach the same answer.
local function bytecmp(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y and -1 or 1 end
  end
  if #a == #b then return 0 end
  return #a < #b and -1 or 1
end

-- Times before 1970 are negative: '-' then the digits of their distance from it.
local function numcmp(a, b)
  local na, nb = string.byte(a, 1) == 45, string.byte(b, 1) == 45
  if na ~= nb then return na and -1 or 1 end
  local c
  if #a ~= #b then c = #a < #b and -1 or 1 else c = bytecmp(a, b) end
  if na then return -c end
  return c
end

-- a decimal string plus one
local function inc(s)
  if string.byte(s, 1) == 45 then
    -- before 1970: one nearer to it, the distance less one
    local digits = {}
    for i = 2, #s do digits[i - 1] = string.byte(s, i) - 48 end
    local i = #digits
    while digits[i] == 0 do digits[i] = 9; i = i - 1 end
    digits[i] = digits[i] - 1
    local out = string.gsub(table.concat(digits), '^0+', '')
    if out == '' then return '0' end
    return '-' .. out
  end
  local digits = {}
  for i = 1, #s do digits[i] = string.byte(s, i) - 48 end
  local i = #digits
  while i >= 1 do
    if digits[i] < 9 then digits[i] = digits[i] + 1; break end
    digits[i] = 0
    i = i - 1
  end
  local out = table.concat(digits)
  if i < 1 then out = '1' .. out end
  return out
end

local function maxnum(a, b) if numcmp(a, b) >= 0 then return a end return b end

-- One format per 1 KiB of bytes: a gsub calling a function per byte took 5 µs of every get's 25.
-- (Slices: string.byte puts every value it returns on Lua's stack, which holds some thousands.)
local function tohex(b)
  local out = {}
  for i = 1, #b, 1024 do
    local j = math.min(i + 1023, #b)
    out[#out + 1] = string.format(string.rep('%02x', j - i + 1), string.byte(b, i, j))
  end
  return table.concat(out)
end
local function fromhex(h)
  return (string.gsub(h, '..', function(x) return string.char(tonumber(x, 16)) end))
end
local function mkey(raw) return fsChunkListKey(tohex(raw)) end

-- Fields in here are the 12 of a record: 1-9 as on the wire, 10 the chunk list hash as 32 raw bytes,
-- 11 the target, 12 the xattrs as raw bytes ('' for none). The wire form (ARGV, replies) joins
-- them with '|' in the order 1-10, 12, 11, chunk list hash and xattrs in hex.
-- Fields 1-9, which both forms join with '|': the fields and the position just past them.
local function firstNine(s)
  local f, pos = {}, 1
  for i = 1, 9 do
    local j = string.find(s, '|', pos, true)
    f[i] = string.sub(s, pos, j - 1)
    pos = j + 1
  end
  local slash = string.find(f[3], '/', 1, true)
  f[13] = ''
  if slash then
    f[13] = string.sub(f[3], slash + 1)
    f[3] = string.sub(f[3], 1, slash - 1)
  end
  return f, pos
end

-- fields 1-9 as stored and sent: the atime (field 13) rides in the mtime field
local function joinNine(f)
  local a = f[13] or ''
  if a == '' then return table.concat(f, '|', 1, 9) end
  return table.concat(f, '|', 1, 2) .. '|' .. f[3] .. '/' .. a .. '|' .. table.concat(f, '|', 4, 9)
end

local function split(raw)
  local f, pos = firstNine(raw)
  local j = string.find(raw, '|', pos, true)
  f[10] = fromhex(string.sub(raw, pos, j - 1))
  local k = string.find(raw, '|', j + 1, true)
  f[12] = fromhex(string.sub(raw, j + 1, k - 1))
  f[11] = string.sub(raw, k + 1)
  return f
end

local function encode(f)
  return joinNine(f) .. '|' .. tohex(f[10]) .. '|' .. tohex(f[12]) .. '|' .. f[11]
end

-- The stored form, sized for memory: all versions of a path in one string value (a hash would
-- leave its compact listpack encoding once a value passes 64 bytes), each framed as
-- `<id> <length> <record>`, the record being fields 1-9 joined by '|', then for files the
-- 32 chunk list hash bytes, then the target. A version with xattrs has its type letter in upper case
-- and `<length>:<xattrs>` before the target (records stored before xattrs existed read as before).
local function pack(f)
  local nine = joinNine(f)
  if f[12] == '' then return nine .. '|' .. f[10] .. f[11] end
  return string.upper(f[1]) .. string.sub(nine, 2) .. '|' .. f[10] .. #f[12] .. ':' .. f[12] .. f[11]
end

local function unpack(rec)
  local f, pos = firstNine(rec)
  local lower = string.lower(f[1])
  local xattrs = lower ~= f[1]
  f[1] = lower
  f[10] = ''
  if f[1] == 'f' then
    f[10] = string.sub(rec, pos, pos + 31)
    pos = pos + 32
  end
  f[12] = ''
  if xattrs then
    local colon = string.find(rec, ':', pos, true)
    local len = tonumber(string.sub(rec, pos, colon - 1))
    f[12] = string.sub(rec, colon + 1, colon + len)
    pos = colon + len + 1
  end
  f[11] = string.sub(rec, pos)
  return f
end

-- every version of a path: list of {id=number, f=fields}
local function versions(p)
  local raw = redis.call('GET', fsVersionsKey(p))
  local vs, pos = {}, 1
  if not raw then return vs end
  while pos <= #raw do
    local a = string.find(raw, ' ', pos, true)
    local b = string.find(raw, ' ', a + 1, true)
    local len = tonumber(string.sub(raw, a + 1, b - 1))
    vs[#vs + 1] = { id = tonumber(string.sub(raw, pos, a - 1)), f = unpack(string.sub(raw, b + 1, b + len)) }
    pos = b + len + 1
  end
  return vs
end

local function save(p, vs)
  local out = {}
  for i, v in ipairs(vs) do
    local rec = pack(v.f)
    out[i] = v.id .. ' ' .. #rec .. ' ' .. rec
  end
  redis.call('SET', fsVersionsKey(p), table.concat(out))
end

local function copy(f)
  local c = {}
  for i = 1, 13 do c[i] = f[i] end
  return c
end

local function find(vs, id)
  for _, v in ipairs(vs) do if v.id == id then return v end end
  return nil
end

-- Which stream of its node a version belongs to: what the node's export directory says (e), or
-- what was done through the mount or by a restore (m). A node's two streams count separately, so
-- a file deleted through the mount stays deleted when the same node's export directory still
-- has the older copy and its translator commits it again.
local function stream(f)
  if f[8] == 'e' then return 'e' end
  return 'm'
end

-- do version fields a win over b: newer mtime; the same, and a node name first in byte order;
-- the same node, and a's stream is the mount's
local function beats(a, b)
  local c = numcmp(a[3], b[3])
  if c ~= 0 then return c > 0 end
  c = bytecmp(a[2], b[2])
  if c ~= 0 then return c < 0 end
  return stream(a) == 'm' and stream(b) == 'e'
end

-- The rule: take the latest version (highest id) of each node's each stream, then the one that
-- beats the others. `except` (node .. ' ' .. stream) leaves one stream out.
local function winner(vs, except)
  local latest = {}
  for _, v in ipairs(vs) do
    local k = v.f[2] .. ' ' .. stream(v.f)
    local l = latest[k]
    if k ~= except and (not l or v.id > l.id) then latest[k] = v end
  end
  local best
  for _, v in pairs(latest) do
    if not best or beats(v.f, best.f) then best = v end
  end
  return best
end

local changed, quiet = {}, false
local function publish(p)
  if not quiet and not changed[p] then
    changed[p] = true
    redis.call('PUBLISH', K.fsEvents, p)
  end
end

local function isDirEntry(e) return e and string.sub(e, 1, 1) == 'd' end

-- the parent's index entry for p: type letter .. id, or false
local function entry(p)
  if p == '/' then return 'd0' end
  local parent, name = parentOf(p)
  return redis.call('HGET', fsDirKey(parent), name)
end

local function setIndex(p, best)
  local parent, name = parentOf(p)
  local old = redis.call('HGET', fsDirKey(parent), name)
  local new = false
  if best and best.f[1] ~= 't' then new = best.f[1] .. best.id end
  if old == new then return old end
  if new then
    redis.call('HSET', fsDirKey(parent), name, new)
  else
    redis.call('HDEL', fsDirKey(parent), name)
  end
  -- A name came or went: the parent's mtime moves to the change's time (shown by get; a commit
  -- of the directory itself, as utimens makes, sets it again), never back: a file's commit is
  -- stamped with the time of its last change, which may come before another name's (src/overlay
  -- commitFile). A directory that went away takes it along.
  if (not old) ~= (not new) and nowMs ~= '0' then
    local t, was = nowMs .. '000000', redis.call('HGET', K.fsDirTimes, parent)
    if not was or numcmp(t, was) > 0 then redis.call('HSET', K.fsDirTimes, parent, t) end
  end
  if isDirEntry(old) and not isDirEntry(new) then redis.call('HDEL', K.fsDirTimes, p) end
  -- A directory came or went: the parent's count of subdirectories follows (once counted), and
  -- the directory's own count, if any, is for a directory that is no more.
  if isDirEntry(old) ~= isDirEntry(new) then
    if redis.call('HEXISTS', K.fsDirLinks, parent) == 1 then redis.call('HINCRBY', K.fsDirLinks, parent, isDirEntry(new) and 1 or -1) end
    redis.call('HDEL', K.fsDirLinks, p)
  end
  publish(p)
  return old
end

-- Store f as a new version of p (or find it already there), recompute the winner, update the
-- parent's index. `loaded`: versions(p), if the caller has just read them (they are consumed).
-- Returns id, isCurrent, the winner, the parent's index entry before.
local function store(p, f, loaded, touch)
  local vs = loaded or versions(p)
  local node, s, maxId, mine, last, lastOther = f[2], stream(f), 0, {}, nil, nil
  for _, v in ipairs(vs) do
    if v.id > maxId then maxId = v.id end
    if v.f[2] == node then
      if stream(v.f) == s then
        mine[#mine + 1] = v
        if not last or v.id > last.id then last = v end
      elseif not lastOther or v.id > lastOther.id then
        lastOther = v
      end
    end
  end
  -- the same content as this node's latest in either stream: nothing new to say (unless the
  -- caller touched it: a chmod or chown to what it already is still moves ctime, as on ext4)
  local id, fresh = maxId + 1, true
  for _, l in ipairs(touch and {} or { last or false, lastOther or false }) do
    if l and fresh then
      local same = true
      for _, i in ipairs({ 1, 3, 4, 5, 6, 7, 10, 11, 12, 13 }) do
        if (l.f[i] or '') ~= (f[i] or '') then same = false; break end
      end
      if same then id, fresh = l.id, false end
    end
  end
  if fresh then
    -- Every op that writes a file version (commit, restore, rename) passes here: the mark tells
    -- a chunk list GC pass that began before this step, and may have scanned p already, to keep
    -- the chunk list (src/state/chunk-list-gc.ts).
    if f[1] == 'f' then redis.call('SADD', K.fsChunkListsRecent, f[10]) end
    -- likewise an inode that an `h` version names
    if f[1] == 'h' then redis.call('SADD', K.fsChunkListsRecent, inodePath(f[11])) end
    redis.call('HDEL', K.fsAccessTimes, p)
    local v = { id = id, f = f }
    vs[#vs + 1] = v
    mine[#mine + 1] = v
    if #mine > HISTORY then
      table.sort(mine, function(a, b) return a.id < b.id end)
      local drop = {}
      for i = 1, #mine - HISTORY do drop[mine[i].id] = true end
      local kept = {}
      for _, x in ipairs(vs) do if not drop[x.id] then kept[#kept + 1] = x end end
      vs = kept
    end
    save(p, vs)
  end
  -- a name given to an inode (again: restore, rename) counts among its names
  if f[1] == 'h' then redis.call('SADD', fsInodeNamesKey(f[11]), p) end
  local best = winner(vs)
  if isInode(p) then
    -- an inode has no index entry; every one of its names shows the change
    for _, name in ipairs(redis.call('SMEMBERS', fsInodeNamesKey(string.sub(p, 2)))) do publish(name) end
    return id, best.id == id, best, nil
  end
  local old = setIndex(p, best)
  return id, best.id == id, best, old
end

local function tombstone(node, mtime)
  return { 't', node, mtime, '0', '0', '0', '0', 'm', nowMs, '', '', '' }
end

-- a name of inode `ino`, of a node's export (e) or mount (m) stream
local function hardlink(node, mtime, ino, source)
  return { 'h', node, mtime, '0', '0', '0', '0', source, nowMs, '', ino, '' }
end

local function implicitDir(like)
  return { 'd', like[2], like[3], '0', '16877', like[6], like[7], like[8], nowMs, '', '', '' }
end

-- A delete (or a newer non-directory) `by` now hides the directory above p. Whatever at and
-- below p is older than `by` gets a tombstone from by's node at by's mtime, so it stays hidden
-- should the directory come back; whatever is newer stays, with the directories above it.
-- Returns the fields of the newest survivor, or nil. At most SUBTREE_MAX entries a step;
-- past that, the rest is left as it is (hidden with its directory, not swept).
local budget = SUBTREE_MAX
local function sweep(p, by)
  local e = entry(p)
  if not e or budget <= 0 then return nil end
  budget = budget - 1
  local rec = find(versions(p), tonumber(string.sub(e, 2)))
  local newest = nil
  if beats(rec.f, by) then newest = rec.f end
  if string.sub(e, 1, 1) == 'd' then
    local kids = redis.call('HGETALL', fsDirKey(p))
    for k = 1, #kids, 2 do
      local s = sweep(join(p, kids[k]), by)
      if s and (not newest or beats(s, newest)) then newest = s end
    end
  end
  if not newest then store(p, tombstone(by[2], by[3])) end
  return newest
end

-- Make every missing or deleted ancestor of p a directory again, as a version from the same
-- node at the child's mtime, where that wins; an ancestor deleted (or replaced) later than
-- that stays so, and p goes under with it (returns true then).
local function ensureParents(p, f)
  local child, parent = p, parentOf(p)
  while parent ~= '/' do
    local e = entry(parent)
    if e and string.sub(e, 1, 1) == 'd' then return false end
    local best = winner(versions(parent))
    if best and not beats(f, best.f) then
      sweep(child, best.f)
      return true
    end
    store(parent, implicitDir(f))
    child, parent = parent, parentOf(parent)
  end
  return false
end

-- store() plus what a change of p means for the paths around it. Returns id, isCurrent.
local function commit(p, f, touch)
  local id, current, best, old = store(p, f, nil, touch)
  local swept = current and f[1] ~= 't' and not isInode(p) and ensureParents(p, f)
  if old and string.sub(old, 1, 1) == 'd' and best.f[1] ~= 'd' then
    swept = true
    -- a directory went away: sweep below it; something newer below brings it back
    local newest = nil
    local kids = redis.call('HGETALL', fsDirKey(p))
    for k = 1, #kids, 2 do
      local s = sweep(join(p, kids[k]), best.f)
      if s and (not newest or beats(s, newest)) then newest = s end
    end
    if newest then store(p, implicitDir(newest)) end
  end
  if swept then current = winner(versions(p)).id == id end
  return id, current
end

local function currentRecord(p)
  local e = entry(p)
  if not e then return false end
  if p == '/' then return { id = 0, f = { 'd', '', '0', '0', '16877', '0', '0', 'e', '0', '', '', '' } } end
  return find(versions(p), tonumber(string.sub(e, 2)))
end

-- What a name's current record stands for: a hard link's inode's current version (with .ino,
-- the inode number), anything else itself.
local function through(cur)
  if not cur or cur.f[1] ~= 'h' then return cur end
  local best = winner(versions(inodePath(cur.f[11])))
  if not best then return false end
  return { id = best.id, f = best.f, ino = cur.f[11] }
end

-- Where the versions of a name whose current record is `cur` are: a hard link's are its
-- file's, at the inode; anything else's at the name.
local function versionsAt(path, cur)
  if cur and cur.f[1] == 'h' then return inodePath(cur.f[11]) end
  return path
end

-- The parent of a new name (rename, link) and its index entry: the name can go there when that
-- is a directory's (the scripts fail with ENOENT for none, ENOTDIR for another type's).
local function parentEntry(to)
  local parent = parentOf(to)
  return parent, entry(parent)
end

-- An inode's link count: its names that are still links to it (the others leave the set).
local function linkCount(ino)
  local n = 0
  for _, name in ipairs(redis.call('SMEMBERS', fsInodeNamesKey(ino))) do
    local cur = currentRecord(name)
    if cur and cur.f[1] == 'h' and cur.f[11] == ino then
      n = n + 1
    else
      redis.call('SREM', fsInodeNamesKey(ino), name)
    end
  end
  return n
end

local function atimeOf(f)
  if (f[13] or '') ~= '' then return f[13] end
  return f[3]
end

-- A name came or went: the inode's ctime moves, as ext4's does (a version like its current one,
-- committed now, with the atime a read gave it).
local function touchInode(ino)
  local p = inodePath(ino)
  local vs = versions(p)
  local best = winner(vs)
  if not best then return end
  local f = copy(best.f)
  f[8], f[9] = 'm', nowMs
  local a = redis.call('HGET', K.fsAccessTimes, p)
  if a and numcmp(a, atimeOf(f)) > 0 then f[13] = a end
  store(p, f, vs, true)
end

-- How many of directory p's names are directories: counted from its index the first time, then
-- kept up to date by setIndex.
local function subdirs(p)
  local n = redis.call('HGET', K.fsDirLinks, p)
  if n then return tonumber(n) end
  local count = 0
  for _, v in ipairs(redis.call('HVALS', fsDirKey(p))) do
    if isDirEntry(v) then count = count + 1 end
  end
  redis.call('HSET', K.fsDirLinks, p, count)
  return count
end

-- What get shows of p: its current version, a directory's mtime moved to the last time a name
-- came or went in it, if later (setIndex), and its atime, a read's when that is later.
local function shown(p)
  local cur = through(currentRecord(p))
  if not cur then return cur end
  local f = cur.f
  if f[1] == 'd' then
    local t = redis.call('HGET', K.fsDirTimes, p)
    if t and numcmp(t, f[3]) > 0 then
      f = copy(f)
      -- a name that comes or goes moves the directory's mtime, not its atime
      if (f[13] or '') == '' then f[13] = f[3] end
      f[3] = t
    end
  end
  local a = redis.call('HGET', K.fsAccessTimes, cur.ino and inodePath(cur.ino) or p)
  if a and numcmp(a, atimeOf(f)) > 0 then
    if f == cur.f then f = copy(f) end
    f[13] = a
  end
  if f == cur.f then return cur end
  return { id = cur.id, f = f, ino = cur.ino }
end

-- The answer get gives for p, whose shown() is cur (false: nothing there), appended to out:
-- id, record, subdirectories, then a hard-linked file's inode number and link count, then the
-- st_ino kept for it.
local function appendShown(out, p, cur)
  out[#out + 1] = cur and cur.id or 0
  out[#out + 1] = cur and encode(cur.f) or ''
  out[#out + 1] = cur and cur.f[1] == 'd' and subdirs(p) or 0
  out[#out + 1] = cur and cur.ino or 0
  out[#out + 1] = cur and cur.ino and linkCount(cur.ino) or 0
  out[#out + 1] = cur and redis.call('HGET', K.fsStInos, cur.ino and inodePath(cur.ino) or p) or ''
  return out
end
