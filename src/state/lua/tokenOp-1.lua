--[[
  The API's user tokens, all in one hash: secret hash (hex SHA-256) → JSON
  {name, role, createdAt, expiresAt (ms, 0: never), createdBy}. A few hundred tokens at most,
  so create and revoke read them all; the check of a request reads one field (HGET, no script).
  KEYS[1] tokens hash
  ARGV[1] op: create | revoke
  create: ARGV[2] secret hash, ARGV[3] the token's JSON, ARGV[4] its name, ARGV[5] now (ms)
    Returns 1; fails with EXISTS token <name> when a token that has not expired has that name.
  revoke: ARGV[2] name, ARGV[3] now (ms)
    Returns the number of tokens removed (0: none has that name).
  Both drop the tokens that have expired, so the hash holds only live ones. An unknown op fails
  with EINVAL.
]]
-- @include fail
local op = ARGV[1]
local function sweep(now, name)
  local found = 0
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local t = cjson.decode(all[i + 1])
    if t.expiresAt > 0 and t.expiresAt <= now then
      redis.call('HDEL', KEYS[1], all[i])
    elseif t.name == name then
      found = found + 1
      if op == 'revoke' then redis.call('HDEL', KEYS[1], all[i]) end
    end
  end
  return found
end

if op == 'create' then
  if sweep(tonumber(ARGV[5]), ARGV[4]) > 0 then return fail('EXISTS', 'token ' .. ARGV[4]) end
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
  return 1
elseif op == 'revoke' then
  return sweep(tonumber(ARGV[3]), ARGV[2])
end
return fail('EINVAL', 'unknown op ' .. tostring(op))
