--[[
  The cluster-wide lock table behind flock(2) and fcntl(2) POSIX record locks, so that locks
  taken through any node's FUSE mount hold against every other node's, with the semantics
  Linux gives them on one machine (src/state/locks.ts describes the model). Every change is
  this one script, so a check and the grant it leads to are one atomic step.

  An owner is `<session>/<kernel lock owner>` (sessions: lockSession-1.lua). Before any look
  at a path, the locks and waits there of dead sessions are dropped with everything else those
  sessions held (include/locks.lua), so nothing below ever sees a dead session's entry.

  KEYS[1] lk:sessions (routes the script to the prefix's slot; the per-path keys are built
          from the prefix so they share that slot, as the fs scripts do)
  ARGV[1] key prefix, ARGV[2] now (ms, '' for Redis' clock), ARGV[3] op, ARGV[4..] per op:
    setlk   <owner> <pid> <path> r|w|u <start> <end> 0|1(wait)
              -> 'granted' | 'blocked' | 'wouldblock' | 'deadlock' | 'lost' | 'nolck'
    getlk   <owner> <path> r|w <start> <end>
              -> {type, start, end, pid, session} of the first (lowest start) conflicting lock
                 of another owner, or false
    flock   <owner> <pid> <path> sh|ex|un 0|1(wait)
              -> 'granted' | 'blocked' | 'wouldblock' | 'lost'
    cancel  <owner> <path> p|f   drops the owner's waits on the path -> 1 if any went, else 0
    release <owner> <path> p|f   drops the owner's locks and waits on the path -> 1 / 0
  Offsets are decimal strings, end inclusive, 'inf' for to-EOF. They stay below 2^53, so Lua's
  doubles hold them exactly; they are written back with %.0f, since tostring keeps 14 digits.
  Fails with EINVAL for an unknown op, lock type or kind, or a malformed range. A lock not
  granted is an answer ('wouldblock', 'lost', ...), not a failure: the kernel gets it as errno.

  Keys (see src/state/keys.ts):
    lk:p:<path>   hash owner -> `<pid>|r,0,9;w,20,inf` (sorted, disjoint, same-type neighbours merged)
    lk:f:<path>   hash owner -> `<pid>|sh` or `<pid>|ex`
    lk:pq:<path>  zset `<type>|<start>|<end>|<owner>` -> arrival number (lk:seq)
    lk:fq:<path>  zset `<sh|ex>|<owner>` -> arrival number
    lk:pw         hash owner -> `<type>|<start>|<end>|<path>` of its latest POSIX wait
    lk:s:<session> set of `p:<path>` / `f:<path>` where the session has locks or waits
  A wait is one request, not one owner: two threads of a process (one POSIX owner) may each
  wait on their own range, and re-asking the same request keeps its place in the queue.
]]
-- @include fail
-- @include clock
local P, now, op = ARGV[1], clock(ARGV[2]), ARGV[3]
-- @include locks

local MAX_RANGES = 1024   -- per owner and path: keeps an entry (and each scan of it) small
local DEADLOCK_STEPS = 10 -- Linux's MAX_DEADLK_ITERATIONS
local INF = math.huge

local function num(s)
  if s == 'inf' then return INF end
  return tonumber(s)
end
local function str(n)
  if n == INF then return 'inf' end
  return string.format('%.0f', n)
end

-- Drop the entries of dead sessions found on one path (and everything else of those sessions).
local function reap(kind, path)
  local seen, dead = {}, {}
  local function look(o)
    local s = o and sessionOf(o)
    if s and not seen[s] then
      seen[s] = true
      if not isAlive(redis.call('ZSCORE', LK.sessions, s)) then dead[#dead + 1] = s end
    end
  end
  for _, o in ipairs(redis.call('HKEYS', lockKey(kind, path))) do look(o) end
  for _, m in ipairs(redis.call('ZRANGE', queueKey(kind, path), 0, -1)) do look(memberOwner(kind, m)) end
  for _, s in ipairs(dead) do
    dropSession(s)
    -- Also when the session's own set missed this path: the entry must not outlive it.
    dropSessionOn(s, kind, path)
  end
end

-- The caller's own session must be alive: a session that missed its lease may already have
-- lost its locks to others, so it may take nothing more (its FS must treat all as lost).
local function callerAlive(owner)
  local s = sessionOf(owner)
  if not s then return false end
  local d = redis.call('ZSCORE', LK.sessions, s)
  if isAlive(d) then return true end
  if d then dropSession(s) end
  return false
end

-- Keep lk:s:<session> listing exactly the paths where the session has entries: several owners
-- (processes) of one session may share a path, so look before removing it.
local function track(owner, kind, path)
  local s = sessionOf(owner)
  local has = false
  for _, o in ipairs(redis.call('HKEYS', lockKey(kind, path))) do
    if sessionOf(o) == s then has = true break end
  end
  if not has then
    for _, m in ipairs(redis.call('ZRANGE', queueKey(kind, path), 0, -1)) do
      local o = memberOwner(kind, m)
      if o and sessionOf(o) == s then has = true break end
    end
  end
  if has then
    redis.call('SADD', sessionKey(s), kind .. ':' .. path)
  else
    redis.call('SREM', sessionKey(s), kind .. ':' .. path)
  end
end

---------------------------------------------------------------------------------------------
-- POSIX record locks

local function decodePosix(v)
  local pid, rest = string.match(v, '^([^|]*)|(.*)$')
  local ranges = {}
  for t, s, e in string.gmatch(rest, '([rw]),([^,;]+),([^;]+)') do
    ranges[#ranges + 1] = { t = t, s = num(s), e = num(e) }
  end
  return pid, ranges
end

local function encodePosix(pid, ranges)
  local parts = {}
  for i, r in ipairs(ranges) do parts[i] = r.t .. ',' .. str(r.s) .. ',' .. str(r.e) end
  return pid .. '|' .. table.concat(parts, ';')
end

-- Every owner's locks on a path, in the hash's order.
local function posixHeld(path)
  local flat = redis.call('HGETALL', lockKey('p', path))
  local out = {}
  for i = 1, #flat, 2 do
    local pid, ranges = decodePosix(flat[i + 1])
    out[#out + 1] = { owner = flat[i], pid = pid, ranges = ranges }
  end
  return out
end

local function ownRanges(locks, owner)
  for _, l in ipairs(locks) do
    if l.owner == owner then return l.ranges, l.pid end
  end
  return {}, nil
end

local function overlaps(s1, e1, s2, e2) return s1 <= e2 and s2 <= e1 end
-- A write lock excludes everything; read locks share.
local function incompatible(t1, t2) return t1 == 'w' or t2 == 'w' end
local function conflicts(t, s, e, r) return incompatible(t, r.t) and overlaps(s, e, r.s, r.e) end
local function conflictsAny(t, s, e, ranges)
  for _, r in ipairs(ranges) do
    if conflicts(t, s, e, r) then return true end
  end
  return false
end

-- The conflicting lock of another owner with the lowest start (a stable answer for F_GETLK).
local function heldConflict(locks, owner, t, s, e)
  local best, bestOwner, bestPid
  for _, l in ipairs(locks) do
    if l.owner ~= owner then
      for _, r in ipairs(l.ranges) do
        if conflicts(t, s, e, r) and (not best or r.s < best.s) then best, bestOwner, bestPid = r, l.owner, l.pid end
      end
    end
  end
  return bestOwner, best, bestPid
end

local function posixMember(t, s, e, owner) return t .. '|' .. str(s) .. '|' .. str(e) .. '|' .. owner end
local function parseWait(m)
  local t, s, e, o = string.match(m, '^([rw])|([^|]*)|([^|]*)|(.*)$')
  return t, num(s), num(e), o
end

--[[
  The owner that keeps `owner` from being granted t over [s,e] now, or nil: another owner's
  lock that conflicts, else (for a blocking request) a conflicting request of another owner
  queued before this one (arrival number below seq; any, when the request is not queued yet),
  so waits are served in order and a stream of readers cannot starve a writer. A waiter that
  is itself blocked by a lock of `owner` does not count: it cannot be granted before `owner`
  lets go anyway, and holding `owner` back behind it would be a deadlock no walk below sees
  (Linux, which has no queue, grants such a conversion at once).
]]
local function posixBlocker(path, owner, t, s, e, queued, seq)
  local locks = posixHeld(path)
  local o = heldConflict(locks, owner, t, s, e)
  if o or not queued then return o end
  local mine = ownRanges(locks, owner)
  local q = redis.call('ZRANGE', queueKey('p', path), 0, -1, 'WITHSCORES')
  for i = 1, #q, 2 do
    if seq and tonumber(q[i + 1]) >= seq then break end
    local wt, ws, we, wo = parseWait(q[i])
    if wo and wo ~= owner and incompatible(t, wt) and overlaps(s, e, ws, we) and not conflictsAny(wt, ws, we, mine) then
      return wo
    end
  end
  return nil
end

--[[
  Linux's posix_locks_deadlock: from the owner blocking the request, follow what that owner
  waits for to the owner blocking it, and so on for at most DEADLOCK_STEPS steps; coming back
  to the requesting owner means granting nobody would ever end the wait. Each step may be on
  another path (lk:pw says where the owner waits); its dead sessions are dropped first.
]]
local function deadlocked(me, blocker)
  local b = blocker
  for _ = 1, DEADLOCK_STEPS do
    local w = redis.call('HGET', LK.waiting, b)
    if not w then return false end
    local t, s, e, path = string.match(w, '^([rw])|([^|]*)|([^|]*)|(.*)$')
    if not t then return false end
    s, e = num(s), num(e)
    reap('p', path)
    local seq = redis.call('ZSCORE', queueKey('p', path), posixMember(t, s, e, b))
    if not seq then return false end
    b = posixBlocker(path, b, t, s, e, true, tonumber(seq))
    if not b then return false end
    if b == me then return true end
  end
  return false
end

-- Take one POSIX wait out of the queue (and out of lk:pw when that names it); true if it was there.
local function unqueuePosix(path, owner, t, s, e)
  local removed = redis.call('ZREM', queueKey('p', path), posixMember(t, s, e, owner)) == 1
  if removed and redis.call('HGET', LK.waiting, owner) == t .. '|' .. str(s) .. '|' .. str(e) .. '|' .. path then
    redis.call('HDEL', LK.waiting, owner)
  end
  return removed
end

-- An owner's ranges after setting t ('u': removing) over [s,e]: what it held there is replaced
-- (cut at s and e, which also converts r<->w in place), then neighbours of one type that touch
-- or overlap are merged, as Linux's posix_lock_inode does for one process.
local function applyRange(ranges, t, s, e)
  local out = {}
  for _, r in ipairs(ranges) do
    if not overlaps(s, e, r.s, r.e) then
      out[#out + 1] = r
    else
      if r.s < s then out[#out + 1] = { t = r.t, s = r.s, e = s - 1 } end
      if r.e > e then out[#out + 1] = { t = r.t, s = e + 1, e = r.e } end
    end
  end
  if t ~= 'u' then out[#out + 1] = { t = t, s = s, e = e } end
  table.sort(out, function(a, b) return a.s < b.s end)
  local merged = {}
  for _, r in ipairs(out) do
    local last = merged[#merged]
    if last and last.t == r.t and last.e ~= INF and last.e + 1 >= r.s then
      if r.e > last.e then last.e = r.e end
    else
      merged[#merged + 1] = { t = r.t, s = r.s, e = r.e }
    end
  end
  return merged
end

-- Did setting t over [s,e] give up anything others could be waiting for (an unlock, or w -> r)?
local function weakens(ranges, t, s, e)
  for _, r in ipairs(ranges) do
    if overlaps(s, e, r.s, r.e) and (t == 'u' or (t == 'r' and r.t == 'w')) then return true end
  end
  return false
end

local function setlk(owner, pid, path, t, s, e, wait)
  if t ~= 'u' and t ~= 'r' and t ~= 'w' then return fail('EINVAL', 'lock type ' .. tostring(t)) end
  if not s or not e or s < 0 or e < s then return fail('EINVAL', 'range ' .. path) end
  if not callerAlive(owner) then return 'lost' end
  reap('p', path)
  local lk = lockKey('p', path)

  if t ~= 'u' then
    local q = queueKey('p', path)
    local member = posixMember(t, s, e, owner)
    local seq = redis.call('ZSCORE', q, member)
    seq = seq and tonumber(seq)
    local blocker = posixBlocker(path, owner, t, s, e, wait, seq)
    if blocker then
      if not wait then return 'wouldblock' end
      if deadlocked(owner, blocker) then
        -- Nothing is queued for a request that fails (it may have been queued by an earlier ask).
        if seq and unqueuePosix(path, owner, t, s, e) then
          track(owner, 'p', path)
          wake(path)
        end
        return 'deadlock'
      end
      if not seq then
        redis.call('ZADD', q, redis.call('INCR', LK.seq), member)
        redis.call('SADD', sessionKey(sessionOf(owner)), 'p:' .. path)
      end
      -- What the owner waits for, for the deadlock walks of others (its latest wait).
      redis.call('HSET', LK.waiting, owner, t .. '|' .. str(s) .. '|' .. str(e) .. '|' .. path)
      return 'blocked'
    end
  end

  local mine, heldPid = ownRanges(posixHeld(path), owner)
  local ranges = applyRange(mine, t, s, e)
  if #ranges > MAX_RANGES and #ranges > #mine then
    -- ENOLCK, as Linux answers when it cannot allocate a lock (an unlock that splits one
    -- range included). A waiter that gives up must not stay queued ahead of others.
    if t ~= 'u' and unqueuePosix(path, owner, t, s, e) then
      track(owner, 'p', path)
      wake(path)
    end
    return 'nolck'
  end
  if #ranges == 0 then
    redis.call('HDEL', lk, owner)
  else
    -- An unlock keeps the pid of the holder; a new lock records the caller's.
    redis.call('HSET', lk, owner, encodePosix(t == 'u' and (heldPid or pid) or pid, ranges))
  end
  local woke = weakens(mine, t, s, e)
  if t ~= 'u' then unqueuePosix(path, owner, t, s, e) end
  track(owner, 'p', path)
  if woke then wake(path) end
  return 'granted'
end

local function getlk(owner, path, t, s, e)
  if t ~= 'r' and t ~= 'w' then return fail('EINVAL', 'lock type ' .. tostring(t)) end
  if not s or not e or s < 0 or e < s then return fail('EINVAL', 'range ' .. path) end
  reap('p', path)
  local o, r, pid = heldConflict(posixHeld(path), owner, t, s, e)
  if not o then return false end
  return { r.t, str(r.s), str(r.e), pid, sessionOf(o) }
end

---------------------------------------------------------------------------------------------
-- flock: one lock per owner (an open file description), sh or ex

local function flockMode(v) return string.match(v, '|(%a+)$') end
local function flockConflict(a, b) return a == 'ex' or b == 'ex' end

local function flock(owner, pid, path, fop, wait)
  if fop ~= 'sh' and fop ~= 'ex' and fop ~= 'un' then return fail('EINVAL', 'flock op ' .. tostring(fop)) end
  if not callerAlive(owner) then return 'lost' end
  reap('f', path)
  local lk, q = lockKey('f', path), queueKey('f', path)
  local cur = redis.call('HGET', lk, owner)
  local curMode = cur and flockMode(cur)
  if fop == 'un' then
    if cur then
      redis.call('HDEL', lk, owner)
      track(owner, 'f', path)
      wake(path)
    end
    return 'granted'
  end
  local member = fop .. '|' .. owner
  if curMode == fop then
    if redis.call('ZREM', q, member) == 1 then track(owner, 'f', path) end
    return 'granted'
  end

  local blocked = false
  local flat = redis.call('HGETALL', lk)
  for i = 1, #flat, 2 do
    if flat[i] ~= owner and flockConflict(fop, flockMode(flat[i + 1])) then
      blocked = true
      break
    end
  end
  local seq = redis.call('ZSCORE', q, member)
  seq = seq and tonumber(seq)
  if not blocked and wait then
    -- Earlier conflicting waiters go first, except those waiting on this owner's own lock
    -- (see posixBlocker).
    local ws = redis.call('ZRANGE', q, 0, -1, 'WITHSCORES')
    for i = 1, #ws, 2 do
      if seq and tonumber(ws[i + 1]) >= seq then break end
      local wop, wo = string.match(ws[i], '^(%a+)|(.*)$')
      if wo and wo ~= owner and flockConflict(fop, wop) and not (curMode and flockConflict(wop, curMode)) then
        blocked = true
        break
      end
    end
  end

  if blocked then
    -- As Linux's flock_lock_inode: a conversion that cannot be granted now first drops the
    -- lock held. Keeping it would let two sh holders that both ask for ex wait on each other
    -- for ever, and flock has no deadlock detection.
    if cur then
      redis.call('HDEL', lk, owner)
      wake(path)
    end
    if wait and not seq then redis.call('ZADD', q, redis.call('INCR', LK.seq), member) end
    track(owner, 'f', path)
    return wait and 'blocked' or 'wouldblock'
  end
  -- Granted: within this one script the old lock is replaced with no moment without either.
  redis.call('HSET', lk, owner, pid .. '|' .. fop)
  redis.call('ZREM', q, member)
  track(owner, 'f', path)
  if curMode == 'ex' then wake(path) end -- ex -> sh lets other sh holders in
  return 'granted'
end

---------------------------------------------------------------------------------------------
-- cancel, release

-- Drop every wait of owner on the path (all its threads' requests: the kernel interrupted one,
-- and the others ask again on their next retry).
local function dropWaits(owner, kind, path)
  local q = queueKey(kind, path)
  local gone = false
  for _, m in ipairs(redis.call('ZRANGE', q, 0, -1)) do
    if memberOwner(kind, m) == owner then
      redis.call('ZREM', q, m)
      gone = true
    end
  end
  if kind == 'p' then
    local w = redis.call('HGET', LK.waiting, owner)
    if w and string.match(w, '^[^|]*|[^|]*|[^|]*|(.*)$') == path then redis.call('HDEL', LK.waiting, owner) end
  end
  return gone
end

local function cancel(owner, path, kind, release)
  if kind ~= 'p' and kind ~= 'f' then return fail('EINVAL', 'lock kind ' .. tostring(kind)) end
  if not callerAlive(owner) then return 0 end -- a dead session's entries are already gone
  reap(kind, path)
  local gone = dropWaits(owner, kind, path)
  if release and redis.call('HDEL', lockKey(kind, path), owner) == 1 then gone = true end
  if gone then
    track(owner, kind, path)
    wake(path)
    return 1
  end
  return 0
end

if op == 'setlk' then
  return setlk(ARGV[4], ARGV[5], ARGV[6], ARGV[7], num(ARGV[8]), num(ARGV[9]), ARGV[10] == '1')
elseif op == 'getlk' then
  return getlk(ARGV[4], ARGV[5], ARGV[6], num(ARGV[7]), num(ARGV[8]))
elseif op == 'flock' then
  return flock(ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8] == '1')
elseif op == 'cancel' then
  return cancel(ARGV[4], ARGV[5], ARGV[6], false)
elseif op == 'release' then
  return cancel(ARGV[4], ARGV[5], ARGV[6], true)
end
return fail('EINVAL', 'unknown op ' .. tostring(op))
