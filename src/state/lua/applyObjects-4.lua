--[[
  Store applied manifests, all or nothing (kubectl apply semantics per object:
  created / configured / unchanged). A Job's spec cannot change once applied: like
  Kubernetes, a changed Job is refused, and then nothing of the batch is stored.
  KEYS[1..4] obj:Job, obj:Service, obj:Node, obj:Mount (the order of KINDS)
  ARGV[1] '1' for a dry run (the results, nothing stored), then triples of kind index (1..4),
  name, canonical JSON
  Returns a list: for each object its result, or {'conflict', name} when refused.
]]
local results = {}
for i = 2, #ARGV, 3 do
  local key, name, json = KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2]
  local old = redis.call('HGET', key, name)
  if old == false then
    results[#results + 1] = 'created'
  elseif old == json then
    results[#results + 1] = 'unchanged'
  elseif key == KEYS[1] then
    return { 'conflict', name }
  else
    results[#results + 1] = 'configured'
  end
end
if ARGV[1] == '1' then return results end
for i = 2, #ARGV, 3 do
  redis.call('HSET', KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2])
end
return results
