-- Publish one publication, atomically: offset, history, TTLs, epoch and fan-out in one step,
-- so every node hears a channel's publications in offset order.
-- Every key and the topic share one hash slot (a Redis Cluster shard runs the whole step).
-- KEYS[1] meta hash (top, epoch, r, b)   KEYS[2] history stream
-- KEYS[3] the slot's vacant epoch (hash: e the epoch, r the replication id it was set under)
-- ARGV: 1 epoch candidate, 2 vacant epoch candidate, 3 history size, 4 ttl ms (0: none),
--       5 pub/sub topic, 6 kind (j|t|b), 7 payload, 8 publisher client ('' when none),
--       9 publisher user, 10 the publish command (PUBLISH, or SPUBLISH on a Redis Cluster)
-- Numbers from the node are passed on as the strings they came in: a Lua number prints as
-- 1e+14 past 14 digits, which Redis refuses.
-- The server's replication id changes when a replica is promoted (failover): publications
-- the old master acknowledged may not have reached it, so its stream starts a new epoch
-- rather than reuse offsets clients already saw.
local replid = string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)')
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'r')
local epoch = meta[1]
if not epoch or meta[2] ~= replid then
  -- History was lost (expired, evicted, server restarted empty, failed over) or never
  -- existed: a new epoch, a new stream, and a new vacant epoch, so a position read while the
  -- channel had no stream matches no later stream but this one.
  -- `b` names the vacant epoch this stream replaces, when the channel had no stream under
  -- this server's replication id: a position (b, 0) read since continues at offset 1. A
  -- stream left by an old master, or a vacant epoch set under one, names none: the old
  -- master may have acknowledged a stream this server never got.
  local before = ''
  if not epoch then
    local vacant = redis.call('HMGET', KEYS[3], 'e', 'r')
    if vacant[1] and vacant[2] == replid then before = vacant[1] end
  end
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'top', 0, 'r', replid, 'b', before)
  redis.call('HSET', KEYS[3], 'e', ARGV[2], 'r', replid)
end
local top = redis.call('HINCRBY', KEYS[1], 'top', 1)
local offset = string.format('%d', top)
local ttl = tonumber(ARGV[4])
if tonumber(ARGV[3]) > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], offset .. '-0',
    'k', ARGV[6], 'c', ARGV[8], 'u', ARGV[9], 'd', ARGV[7])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
end
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
redis.call(ARGV[10], ARGV[5], 'p ' .. offset .. ' ' .. epoch .. ' ' .. ARGV[6] .. ' '
  .. #ARGV[8] .. ' ' .. #ARGV[9] .. '\n' .. ARGV[8] .. ARGV[9] .. ARGV[7])
return {top, epoch}
