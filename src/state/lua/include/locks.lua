-- The lock table's key names and its session rules, shared by lock-1.lua and lockSession-1.lua
-- (src/state/locks.ts describes the model; the names mirror src/state/keys.ts). The including
-- script defines P (the key prefix) and now (ms, Redis' clock) before it. Every key is built
-- from P, so all of them share the prefix's {hash tag} and the script's slot.
local LK = {
  sessions = P .. 'lk:sessions',
  waiting = P .. 'lk:pw',
  seq = P .. 'lk:seq',
  wake = P .. 'lk:wake',
}
local function sessionKey(s) return P .. 'lk:s:' .. s end
-- kind 'p' (POSIX record locks) or 'f' (flock)
local function lockKey(kind, path) return P .. 'lk:' .. kind .. ':' .. path end
local function queueKey(kind, path) return P .. 'lk:' .. kind .. 'q:' .. path end

-- An owner is `<session>/<kernel lock owner>`; the lock owner is a decimal number, so the last
-- '/' separates them whatever the session id holds.
local function sessionOf(owner) return string.match(owner, '^(.*)/[^/]*$') end

-- The owner of a wait-queue member: POSIX `<type>|<start>|<end>|<owner>`, flock `<op>|<owner>`.
-- The owner comes last so that nothing it holds can shift the fields before it.
local function memberOwner(kind, m)
  if kind == 'p' then return string.match(m, '^[^|]*|[^|]*|[^|]*|(.*)$') end
  return string.match(m, '^[^|]*|(.*)$')
end

-- Waiters retry when their path is published; once per path and script is enough.
local published = {}
local function wake(path)
  if published[path] then return end
  published[path] = true
  redis.call('PUBLISH', LK.wake, path)
end

local function isAlive(deadline) return deadline and tonumber(deadline) > now or false end

-- Drop every lock and wait of session s on one path and kind; true when something went.
local function dropSessionOn(s, kind, path)
  local gone = false
  local lk = lockKey(kind, path)
  for _, o in ipairs(redis.call('HKEYS', lk)) do
    if sessionOf(o) == s then
      redis.call('HDEL', lk, o)
      gone = true
    end
  end
  local q = queueKey(kind, path)
  for _, m in ipairs(redis.call('ZRANGE', q, 0, -1)) do
    local o = memberOwner(kind, m)
    if o and sessionOf(o) == s then
      redis.call('ZREM', q, m)
      if kind == 'p' then redis.call('HDEL', LK.waiting, o) end
      gone = true
    end
  end
  -- A lock or wait that went away may be what a waiter was queued behind.
  if gone then wake(path) end
  return gone
end

-- A session that is closed or whose lease passed: everything it held or waited for goes, found
-- through its own set of paths rather than by scanning the table.
local function dropSession(s)
  local sk = sessionKey(s)
  for _, e in ipairs(redis.call('SMEMBERS', sk)) do
    dropSessionOn(s, string.sub(e, 1, 1), string.sub(e, 3))
  end
  redis.call('DEL', sk)
  redis.call('ZREM', LK.sessions, s)
end
