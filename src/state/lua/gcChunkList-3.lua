--[[
  Delete a chunk list (or a hard-linked file's inode) that a chunk list GC pass found no version
  naming, unless a version took it since the pass began. Why that is enough: src/state/chunk-list-gc.ts.

  KEYS[1] fs:mrecent, KEYS[2] fs:m:<hash> (fs:p:#<n>), KEYS[3] pfs:loc:<hash> (fs:in:<n>)
  ARGV[1] the pass's token, ARGV[2] the chunk list hash as 32 raw bytes (`#<n>`), as the fs scripts mark it
  -> how many it deleted (0 or 1). Fails with SUPERSEDED <token> when a newer pass has begun
     (fs:mrecent no longer holds this pass's token: its marks are not this pass's).
]]
-- @include fail
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return fail('SUPERSEDED', ARGV[1]) end
if redis.call('SISMEMBER', KEYS[1], ARGV[2]) == 1 then return 0 end
redis.call('DEL', KEYS[3])
return redis.call('DEL', KEYS[2])
