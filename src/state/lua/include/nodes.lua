-- What the scheduler sees of a node: what its agent offers (agentLabels, agentCpus,
-- agentMemoryBytes) with the Node manifest applied on top: its labels added, its capacity
-- as a cap. Every node also carries the label oswalk.dev/node=<its name>.
local function effectiveNode(nodeKey, nodeObjectsKey, name)
  local raw = redis.call('HMGET', nodeKey, 'agentLabels', 'agentCpus', 'agentMemoryBytes')
  if not raw[2] then return end
  local labels = cjson.decode(raw[1] or '{}')
  local cpus, mem = tonumber(raw[2]), tonumber(raw[3])
  local manifest = redis.call('HGET', nodeObjectsKey, name)
  if manifest then
    local spec = cjson.decode(manifest).spec or {}
    if type(spec.labels) == 'table' then
      for k, v in pairs(spec.labels) do labels[k] = v end
    end
    local cap = spec.capacity or {}
    if type(cap.cpus) == 'number' and cap.cpus < cpus then cpus = cap.cpus end
    if type(cap.memoryBytes) == 'number' and cap.memoryBytes < mem then mem = cap.memoryBytes end
  end
  labels['oswalk.dev/node'] = name
  -- %.0f: cjson and tostring would print large byte counts in exponent form.
  redis.call('HSET', nodeKey, 'labels', cjson.encode(labels), 'cpus', tostring(cpus), 'memoryBytes', string.format('%.0f', mem))
end
