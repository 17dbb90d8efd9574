-- The time of a state change, in ms: the caller's when it gives one (tests set the clock), else
-- Redis' own. Agents, control planes and their clocks come and go; one clock for heartbeats,
-- leases and the monitor that judges them keeps a skewed host from looking dead or alive, and
-- a call that waited in a client's queue through an outage from arriving with a lease already
-- expired.
local function clock(arg)
  if arg ~= nil and arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
