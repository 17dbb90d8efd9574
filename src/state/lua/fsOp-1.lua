--[[
  Every change to the filesystem namespace, and the reads that must see one consistent
  state, as one script so the rules (winner, parent index, implicit parents, sweeps below a
  deleted directory, history bound) exist once. See src/state/fs.ts for the model; this file
  is its only implementation (test/fsmeta/pick-current.ts restates the winner rule in
  TypeScript, for the tests that check this script against it).

  KEYS[1] fs:p:<path> of ARGV[3] (routes the script to the prefix's slot; every other key is
          built from the prefix and so shares that slot)
  ARGV[1] key prefix, ARGV[2] op, ARGV[3] normalized path, ARGV[4..] per op:
    commit  <record> x|''  (x: EEXIST if it exists) w|'' <lock session>|'' t|''
                                  -> {id, current 0|1, published 0|1, mtimeNs, inode, links, st_ino}
            (inode and links: those of the hard-linked file the commit changed, else 0 and 0;
            st_ino as get answers it)
            (t: a version even when it repeats the latest: a setattr that changes nothing
            still moves ctime)
            (published: an event went out for the path; not for a repeat of the latest version;
            a lock session: the commit is made under a lock of that session of the lock table,
            src/state/locks.ts, and fails with ENOLCK unless its lease still holds, by Redis'
            clock, so a mount that lost its locks never lands what it wrote under them)
    remove  <node> <mtimeNs> <nowMs> unlink|rmdir     -> {id, mtimeNs used}
    restore <id> <node> <nowNs> <nowMs>               -> {id, record}
    rename  <to> <node> <mtimeNs> <nowMs> <st_ino>|''  -> {entries moved, mtimeNs used}
            (st_ino: the inode number the mount showed for the path, which the entry keeps)
    get                                               -> {id, record, subdirectories} or false
    getmany <path> ...  (ARGV[3] is the first path)   -> {id or 0, record or '', subdirectories, ...}
    (subdirectories: how many of a directory's names are directories, 0 for anything else)
    (get and getmany show a directory's mtime moved to fs:dt[path] when that is later: the
    time a name last came or went in it; a commit of the directory clears it)
    versions stored|''                                -> {winner id or 0, id, record, ...}
            (those of a hard link's inode, unless `stored`: those stored at the path)
    list    <cursor> <count>                          -> {next cursor, name, value, ...}
            (one page of the directory's index, by HSCAN: a name there for the whole listing
            comes at least once, maybe twice; one that comes or goes meanwhile maybe. Next
            cursor '0': the listing is done. Pages keep each step short and each reply small
            however big the directory: a whole 100,000-name index in one reply held Redis and
            the reader's memory at once)
    link    <to> <node> <nowNs> <nowMs> e|m <st_ino>|'' -> {inode, link count}
            (st_ino: the number the mount showed for the file, which it keeps as an inode)
            (e: a link a node's export directory has, made by its translator; m: through a mount)
    access  <nowNs>                                   -> {1 when the atime moved else 0, the atime shown}
            (a read: the atime moves to now as relatime has it, when the atime shown is not
            after the mtime or ctime, or is a day old; kept apart from the versions in fs:at,
            so that a read is no new version; its event is `\0<atime> <path>`: only that
            path's atime changed, not its parent's listing nor anything below it)
  get and getmany also answer, after the subdirectories, the inode number and link count of a
  hard-linked file (0 and 0 for anything else), then the st_ino a rename or link carried to the
  path or inode ('' for none: the mount numbers it by its path), kept in fs:st.
  A record on the wire is `type|node|mtimeNs|size|mode|uid|gid|source|committedAt|manifest|xattrs|target`,
  with type f(ile) d(ir) l(ink) s(pecial: a fifo, socket or device, whose size field holds its
  device number) t(ombstone) h(ard link, whose target is an inode number) and source e(xport) m(ount) r(estore), manifest and
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
  kept version names it; manifest GC deletes it after (src/state/manifest-gc.ts), so every
  step that writes an `h` version marks `#<n>` in fs:mrecent. A link the translator made (an `h`
  version of a node's export stream) is that node's export directory's: its translator's later
  versions of the file at either name are the inode's too, as the mount's are.
  Errors are replies `<ERRNO> <path>`. A commit of a file whose manifest is not in fs:m (manifest
  GC deleted it since the caller put it) fails with ESTALE: put the manifest again and retry.
]]
-- Key names built from the prefix (ARGV[1]); mirrors src/state/keys.ts.
-- All share the prefix's {hash tag}, so on Redis Cluster they live in the script's slot.
local P, op, path = ARGV[1], ARGV[2], ARGV[3]
local FK = {
  events = P .. 'fs:events',
  manifestsRecent = P .. 'fs:mrecent',
  dirTimes = P .. 'fs:dt',
  -- directory path -> how many of its names are directories (its link count is 2 more), kept from
  -- the first time a get asked for it (subdirs below); a directory not in it is counted then
  dirLinks = P .. 'fs:dn',
  -- path (a hard-linked file's: its inode's pseudo-path) -> ns of the last read that moved its atime
  -- (access), shown when later than its version's atime; a new version of it takes the atime along
  accessTimes = P .. 'fs:at',
  -- path (an inode: #<n>) -> the st_ino it keeps: what its entry showed before a rename or link
  stInos = P .. 'fs:st',
  inodeSeq = P .. 'fs:ino',
  -- the lock table's (include/locks.lua): a commit made under a lock checks its session's lease
  lockSessions = P .. 'lk:sessions',
}
local function pkey(p) return P .. 'fs:p:' .. p end
local function namesKey(ino) return P .. 'fs:in:' .. ino end
local function dkey(p) return P .. 'fs:d:' .. p end
-- mkey (fs:m:<hash>) is below, with tohex.

local nowMs = '0' -- committedAt of the versions a step adds besides the one it was given
local HISTORY = 20        -- versions kept per node and stream per path
local SUBTREE_MAX = 5000  -- entries one rename (or delete sweep) may touch: a few hundred ms of Redis time; more gets EXDEV, and mv copies

-- a hard-linked file's inode, as the pseudo-path its versions live at
local function isInode(p) return string.sub(p, 1, 1) == '#' end
-- Where the versions of hard-linked file number `ino` are kept, as a path.
local function inodePath(ino) return '#' .. ino end

-- @include fail

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
local function mkey(raw) return P .. 'fs:m:' .. tohex(raw) end

-- Fields in here are the 12 of a record: 1-9 as on the wire, 10 the manifest as 32 raw bytes,
-- 11 the target, 12 the xattrs as raw bytes ('' for none). The wire form (ARGV, replies) joins
-- them with '|' in the order 1-10, 12, 11, manifest and xattrs in hex.
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
-- 32 manifest bytes, then the target. A version with xattrs has its type letter in upper case
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
  local raw = redis.call('GET', pkey(p))
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
  redis.call('SET', pkey(p), table.concat(out))
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
    redis.call('PUBLISH', FK.events, p)
  end
end

local function isDirEntry(e) return e and string.sub(e, 1, 1) == 'd' end

-- the parent's index entry for p: type letter .. id, or false
local function entry(p)
  if p == '/' then return 'd0' end
  local parent, name = parentOf(p)
  return redis.call('HGET', dkey(parent), name)
end

local function setIndex(p, best)
  local parent, name = parentOf(p)
  local old = redis.call('HGET', dkey(parent), name)
  local new = false
  if best and best.f[1] ~= 't' then new = best.f[1] .. best.id end
  if old == new then return old end
  if new then
    redis.call('HSET', dkey(parent), name, new)
  else
    redis.call('HDEL', dkey(parent), name)
  end
  -- A name came or went: the parent's mtime moves to the change's time (shown by get; a commit
  -- of the directory itself, as utimens makes, sets it again), never back: a file's commit is
  -- stamped with the time of its last change, which may come before another name's (src/overlay
  -- commitFile). A directory that went away takes it along.
  if (not old) ~= (not new) and nowMs ~= '0' then
    local t, was = nowMs .. '000000', redis.call('HGET', FK.dirTimes, parent)
    if not was or numcmp(t, was) > 0 then redis.call('HSET', FK.dirTimes, parent, t) end
  end
  if isDirEntry(old) and not isDirEntry(new) then redis.call('HDEL', FK.dirTimes, p) end
  -- A directory came or went: the parent's count of subdirectories follows (once counted), and
  -- the directory's own count, if any, is for a directory that is no more.
  if isDirEntry(old) ~= isDirEntry(new) then
    if redis.call('HEXISTS', FK.dirLinks, parent) == 1 then redis.call('HINCRBY', FK.dirLinks, parent, isDirEntry(new) and 1 or -1) end
    redis.call('HDEL', FK.dirLinks, p)
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
    -- a manifest GC pass that began before this step, and may have scanned p already, to keep
    -- the manifest (src/state/manifest-gc.ts).
    if f[1] == 'f' then redis.call('SADD', FK.manifestsRecent, f[10]) end
    -- likewise an inode that an `h` version names
    if f[1] == 'h' then redis.call('SADD', FK.manifestsRecent, inodePath(f[11])) end
    redis.call('HDEL', FK.accessTimes, p)
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
  if f[1] == 'h' then redis.call('SADD', namesKey(f[11]), p) end
  local best = winner(vs)
  if isInode(p) then
    -- an inode has no index entry; every one of its names shows the change
    for _, name in ipairs(redis.call('SMEMBERS', namesKey(string.sub(p, 2)))) do publish(name) end
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
    local kids = redis.call('HGETALL', dkey(p))
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
    local kids = redis.call('HGETALL', dkey(p))
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

-- A new name's parent cannot take it: the error to return (rename, link), or nil.
local function parentRefusal(to)
  local parent = parentOf(to)
  local pe = entry(parent)
  if not pe then return fail('ENOENT', parent) end
  if not isDirEntry(pe) then return fail('ENOTDIR', parent) end
end

-- An inode's link count: its names that are still links to it (the others leave the set).
local function linkCount(ino)
  local n = 0
  for _, name in ipairs(redis.call('SMEMBERS', namesKey(ino))) do
    local cur = currentRecord(name)
    if cur and cur.f[1] == 'h' and cur.f[11] == ino then
      n = n + 1
    else
      redis.call('SREM', namesKey(ino), name)
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
  local a = redis.call('HGET', FK.accessTimes, p)
  if a and numcmp(a, atimeOf(f)) > 0 then f[13] = a end
  store(p, f, vs, true)
end

-- What get shows of p: its current version, a directory's mtime moved to the last time a name
-- came or went in it, if later (setIndex).
-- How many of directory p's names are directories: counted from its index the first time, then
-- kept up to date by setIndex.
local function subdirs(p)
  local n = redis.call('HGET', FK.dirLinks, p)
  if n then return tonumber(n) end
  local count = 0
  for _, v in ipairs(redis.call('HVALS', dkey(p))) do
    if isDirEntry(v) then count = count + 1 end
  end
  redis.call('HSET', FK.dirLinks, p, count)
  return count
end

-- And its atime, a read's when that is later.
local function shown(p)
  local cur = through(currentRecord(p))
  if not cur then return cur end
  local f = cur.f
  if f[1] == 'd' then
    local t = redis.call('HGET', FK.dirTimes, p)
    if t and numcmp(t, f[3]) > 0 then
      f = copy(f)
      -- a name that comes or goes moves the directory's mtime, not its atime
      if (f[13] or '') == '' then f[13] = f[3] end
      f[3] = t
    end
  end
  local a = redis.call('HGET', FK.accessTimes, cur.ino and inodePath(cur.ino) or p)
  if a and numcmp(a, atimeOf(f)) > 0 then
    if f == cur.f then f = copy(f) end
    f[13] = a
  end
  if f == cur.f then return cur end
  return { id = cur.id, f = f, ino = cur.ino }
end

if op == 'commit' then
  if path == '/' then return fail('EINVAL', path) end
  if ARGV[5] == 'x' and entry(path) then return fail('EEXIST', path) end
  if ARGV[7] and ARGV[7] ~= '' then
    local t = redis.call('TIME')
    local lease = redis.call('ZSCORE', FK.lockSessions, ARGV[7])
    if not lease or tonumber(lease) <= tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) then return fail('ENOLCK', path) end
  end
  local f = split(ARGV[4])
  -- Only a commit brings a manifest from outside; restore and rename copy one from a kept
  -- version, and manifest GC never deletes what a kept version names.
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
  -- A change of attributes alone (chmod, chown, extended attributes: the same content and
  -- mtime) made through the mount to another node's current version is a version of that
  -- node's copy. As one of its own node's, it would tie with the copy it changes on mtime and
  -- lose whenever its node's name sorts later.
  local cur = f[8] == 'm' and (named and through(named) or currentRecord(path))
  if cur and cur.f[2] ~= f[2] and cur.f[1] == f[1] and cur.f[3] == f[3] and cur.f[10] == f[10] and cur.f[12] == f[12] then
    f[2] = cur.f[2]
  end
  -- New content written through a mount is what the path holds from now on. Kept with an older
  -- mtime (cp -p, tar, a clock behind) than another copy's, or a delete's, it would vanish
  -- behind it at once: it takes the time just past that one's instead, as a rename does.
  if ARGV[6] == 'w' and f[1] == 'f' then
    local other = winner(versions(at), f[2] .. ' m')
    if other and beats(other.f, f) then f[3] = inc(other.f[3]) end
  end
  local id, current = commit(at, f, ARGV[8] == 't')
  -- Even when it repeats the latest version (rsync sets a directory's times when it makes it
  -- and again when it has filled it), what the directory says of its mtime holds again.
  if current and f[1] == 'd' then redis.call('HDEL', FK.dirTimes, path) end
  local ino = at ~= path and string.sub(at, 2)
  return { id, current and 1 or 0, changed[path] and 1 or 0, f[3], ino or 0, ino and linkCount(ino) or 0,
    redis.call('HGET', FK.stInos, ino and inodePath(ino) or path) or '' }

elseif op == 'get' then
  local cur = shown(path)
  if not cur then return false end
  return { cur.id, encode(cur.f), cur.f[1] == 'd' and subdirs(path) or 0, cur.ino or 0, cur.ino and linkCount(cur.ino) or 0,
    redis.call('HGET', FK.stInos, cur.ino and inodePath(cur.ino) or path) or '' }

elseif op == 'getmany' then
  local out = {}
  for i = 3, #ARGV do
    local cur = shown(ARGV[i])
    out[#out + 1] = cur and cur.id or 0
    out[#out + 1] = cur and encode(cur.f) or ''
    out[#out + 1] = cur and cur.f[1] == 'd' and subdirs(ARGV[i]) or 0
    out[#out + 1] = cur and cur.ino or 0
    out[#out + 1] = cur and cur.ino and linkCount(cur.ino) or 0
    out[#out + 1] = cur and redis.call('HGET', FK.stInos, cur.ino and inodePath(cur.ino) or ARGV[i]) or ''
  end
  return out

elseif op == 'versions' then
  -- a hard link's are its file's, at the inode
  local at = versionsAt(path, ARGV[4] ~= 'stored' and not isInode(path) and currentRecord(path))
  local vs = versions(at)
  local best = winner(vs)
  local out = { best and best.id or 0 }
  for _, v in ipairs(vs) do
    out[#out + 1] = tostring(v.id)
    out[#out + 1] = encode(v.f)
  end
  return out

elseif op == 'list' then
  if not isDirEntry(entry(path)) then
    if entry(path) then return fail('ENOTDIR', path) end
    return fail('ENOENT', path)
  end
  local page = redis.call('HSCAN', dkey(path), ARGV[4], 'COUNT', ARGV[5])
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

elseif op == 'remove' then
  local node, mtime, kind = ARGV[4], ARGV[5], ARGV[7]
  nowMs = ARGV[6]
  if path == '/' then return fail('EBUSY', path) end
  local cur = currentRecord(path)
  if not cur then return fail('ENOENT', path) end
  if kind == 'rmdir' then
    if cur.f[1] ~= 'd' then return fail('ENOTDIR', path) end
    if redis.call('HLEN', dkey(path)) > 0 then return fail('ENOTEMPTY', path) end
  elseif cur.f[1] == 'd' then
    return fail('EISDIR', path)
  end
  -- what the user saw is what goes, even when its mtime is ahead of our clock
  mtime = maxnum(mtime, inc(cur.f[3]))
  local id = commit(path, tombstone(node, mtime))
  if cur.f[1] == 'h' then touchInode(cur.f[11]) end
  redis.call('HDEL', FK.stInos, path)
  return { id, mtime }

elseif op == 'restore' then
  local vid, node, nowNs = ARGV[4], ARGV[5], ARGV[6]
  nowMs = ARGV[7]
  -- a hard link's versions are its file's, at the inode
  local at = versionsAt(path, currentRecord(path))
  local vs = versions(at)
  local old = find(vs, tonumber(vid))
  if not old then return fail('ENOENT', path .. ' (no version ' .. vid .. ' is kept: oswalk versions lists those that are)') end
  local f = copy(old.f)
  if f[1] == 't' then return fail('EINVAL', path .. ' (version ' .. vid .. ' is a delete: restore one with content)') end
  if f[1] == 'h' and redis.call('EXISTS', pkey(inodePath(f[11]))) == 0 then return fail('EINVAL', path .. ' (version ' .. vid .. ' is a hard link to a file no longer kept)') end
  local best = winner(vs)
  local mtime = maxnum(nowNs, inc(best.f[3]))
  f[2], f[3], f[8], f[9] = node, mtime, 'r', nowMs
  local id = commit(at, f)
  return { id, encode(f) }

elseif op == 'rename' then
  local to, node, mtime = ARGV[4], ARGV[5], ARGV[6]
  nowMs = ARGV[7]
  local src = currentRecord(path)
  if not src or path == '/' then return fail('ENOENT', path) end
  if to == '/' then return fail('EBUSY', to) end
  if path == to then return { 0, mtime } end
  if string.sub(to, 1, #path + 1) == path .. '/' then return fail('EINVAL', to) end
  local refused = parentRefusal(to)
  if refused then return refused end
  local dst = entry(to)
  local srcDir = src.f[1] == 'd'
  -- to is another name of the same file: nothing happens (rename(2))
  local dstRec = dst and string.sub(dst, 1, 1) == 'h' and currentRecord(to)
  if dstRec and src.f[1] == 'h' and dstRec.f[11] == src.f[11] then return { 0, mtime } end
  if dst then
    if srcDir and not isDirEntry(dst) then return fail('ENOTDIR', to) end
    if not srcDir and isDirEntry(dst) then return fail('EISDIR', to) end
    if isDirEntry(dst) and redis.call('HLEN', dkey(to)) > 0 then return fail('ENOTEMPTY', to) end
  end
  -- the subtree, parents before children, as paths relative to `path`
  local moves = { { rel = '', rec = src, vs = versions(path) } }
  local i = 1
  while i <= #moves do
    local m = moves[i]
    if m.rec.f[1] == 'd' then
      local kids = redis.call('HGETALL', dkey(path .. m.rel))
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
    if m.rec.f[1] == 'd' then m.dirTime = redis.call('HGET', FK.dirTimes, path .. m.rel) end
    m.atime = redis.call('HGET', FK.accessTimes, path .. m.rel)
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
      redis.call('HSET', FK.dirTimes, to .. m.rel, m.dirTime)
    elseif m.rec.f[1] == 'd' then
      redis.call('HDEL', FK.dirTimes, to .. m.rel)
    end
    if m.atime then redis.call('HSET', FK.accessTimes, to .. m.rel, m.atime) end
  end
  -- Each entry keeps its inode number, as rename(2) has it: the moved one the number the mount
  -- showed (ARGV[8]), those below it theirs if a rename or link gave them one (others are
  -- numbered by their path, and so take new ones). A hard link's is its inode's, kept there.
  local kept = {}
  for _, m in ipairs(moves) do
    kept[#kept + 1] = (m.rel == '' and ARGV[8] ~= '') and ARGV[8] or redis.call('HGET', FK.stInos, path .. m.rel) or false
  end
  for k, m in ipairs(moves) do
    redis.call('HDEL', FK.stInos, path .. m.rel)
    if kept[k] and m.rec.f[1] ~= 'h' then
      redis.call('HSET', FK.stInos, to .. m.rel, kept[k])
    else
      redis.call('HDEL', FK.stInos, to .. m.rel)
    end
  end
  -- the target's directory changed even where a name was replaced, not added
  redis.call('HSET', FK.dirTimes, parentOf(to), nowMs .. '000000')
  quiet = false
  publish(path)
  publish(to)
  -- the moved file's ctime moves, and that of one it replaced which has other names
  if src.f[1] == 'h' then touchInode(src.f[11]) end
  if dstRec then touchInode(dstRec.f[11]) end
  return { #moves, mtime }

elseif op == 'access' then
  local nowNs = ARGV[4]
  local cur = shown(path)
  if not cur then return fail('ENOENT', path) end
  local f = cur.f
  local atime = atimeOf(f)
  -- relatime (Linux's default): not after the mtime, nor the ctime (ms), or a day old
  local due = numcmp(atime, f[3]) <= 0 or numcmp(atime, f[9] .. '000000') <= 0 or tonumber(nowNs) - tonumber(atime) >= 86400e9
  if not due or numcmp(nowNs, atime) <= 0 then return { 0, atime } end
  redis.call('HSET', FK.accessTimes, cur.ino and inodePath(cur.ino) or path, nowNs)
  local names = cur.ino and redis.call('SMEMBERS', namesKey(cur.ino)) or { path }
  for _, name in ipairs(names) do redis.call('PUBLISH', FK.events, '\0' .. nowNs .. ' ' .. name) end
  return { 1, nowNs }

elseif op == 'link' then
  local to, node, nowNs, source = ARGV[4], ARGV[5], ARGV[6], ARGV[8]
  nowMs = ARGV[7]
  local src = currentRecord(path)
  if not src or path == '/' then return fail('ENOENT', path) end
  if src.f[1] == 'd' then return fail('EPERM', path) end
  local refused = parentRefusal(to)
  if refused then return refused end
  if entry(to) then return fail('EEXIST', to) end
  local ino
  if src.f[1] == 'h' then
    ino = src.f[11]
    touchInode(ino)
  else
    -- The file becomes an inode: its current version moves there (committed now: its ctime
    -- moves), and its name becomes a link to it that beats what the name held.
    ino = tostring(redis.call('INCR', FK.inodeSeq))
    local f = copy(src.f)
    f[8], f[9] = source, nowMs
    store(inodePath(ino), f, nil, true)
    -- the file keeps the number it showed, as link(2) has it (ARGV[9]: the mount's)
    local shownIno = ARGV[9] ~= '' and ARGV[9] or redis.call('HGET', FK.stInos, path)
    if shownIno then redis.call('HSET', FK.stInos, inodePath(ino), shownIno) end
    redis.call('HDEL', FK.stInos, path)
    store(path, hardlink(node, inc(src.f[3]), ino, source))
  end
  -- the new name beats whatever was deleted there
  local vs = versions(to)
  local there = winner(vs)
  local mtime = nowNs
  if there then mtime = maxnum(mtime, inc(there.f[3])) end
  store(to, hardlink(node, mtime, ino, source), vs)
  return { ino, linkCount(ino) }
end
return fail('EINVAL', 'unknown fsOp ' .. tostring(op))
