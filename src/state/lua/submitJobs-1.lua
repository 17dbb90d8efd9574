--[[
  Submit a batch of job records as pending, in one step, and wake the scheduler once.
  KEYS[1] jobs:pending
  ARGV[1] prefix, ARGV[2] now (ms), ARGV[3..] one JSON record each
    {id, name, ownerKind, ownerName, index, spec, priority, milliCpus, memoryBytes, restartPolicy, backoffLimit}
    and, when present, input (JSON: where the job's input files' data is, InputLocality in src/state/locality.ts)
  Returns how many records were new (an id that already exists is left alone).
]]
-- @include keys
-- @include jobs
local now = tonumber(ARGV[2])
local created = 0
for i = 3, #ARGV do
  created = created + submitJob(cjson.decode(ARGV[i]), now)
end
if created > 0 then wake(K.schedWake) end
return created
