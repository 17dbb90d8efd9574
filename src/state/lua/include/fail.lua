-- A script's failure: an error reply `<CODE> <detail>`, CODE one of those the script's header
-- lists, which runScript (src/state/scripts.ts) turns into a ScriptError.
local function fail(code, detail) return redis.error_reply(code .. ' ' .. detail) end
