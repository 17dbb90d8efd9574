--[[
  Take or keep the leader lease: succeeds when nobody holds it or this holder does.
  KEYS[1] leader; ARGV[1] holder id, ARGV[2] lease (ms), ARGV[3] 'release' to let go
  Returns 1 when this holder leads (or released), 0 otherwise.
]]
local cur = redis.call('GET', KEYS[1])
if ARGV[3] == 'release' then
  if cur == ARGV[1] then redis.call('DEL', KEYS[1]) end
  return 1
end
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
