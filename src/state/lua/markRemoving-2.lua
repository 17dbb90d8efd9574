--[[
  Mark a node as being removed (`oswalk node remove`), or undo that (`oswalk uncordon`). While
  marked, its copies do not count and replication moves what only it holds elsewhere
  (src/packetfs/replicate.ts). Marking a node already being removed keeps the time it began,
  so running the command again after a timeout goes on waiting for the same removal (the
  replication passes since then still count).
  KEYS[1] nodes set, KEYS[2] node hash
  ARGV[1] node name, ARGV[2] '1' to mark, '0' to clear, ARGV[3] now (ms, '' for Redis' clock)
  Returns when the removal began (ms), 0 once cleared. Fails with NONODE <node> when there is
  no such node.
]]
-- @include fail
-- @include clock
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 or redis.call('EXISTS', KEYS[2]) == 0 then
  return fail('NONODE', ARGV[1])
end
if ARGV[2] == '0' then
  redis.call('HDEL', KEYS[2], 'removing', 'removingSince')
  return 0
end
local cur = redis.call('HMGET', KEYS[2], 'removing', 'removingSince')
if cur[1] == 'true' and cur[2] then return tonumber(cur[2]) end
local since = clock(ARGV[3])
redis.call('HSET', KEYS[2], 'removing', 'true', 'removingSince', since)
return since
