-- Publish one publication, atomically: offset, history, TTLs, epoch and fan-out in one step,
-- so every node hears a channel's publications in offset order.
-- KEYS[1] meta hash (top, epoch)   KEYS[2] history stream   KEYS[3] vacant epoch (string)
-- ARGV: 1 epoch candidate, 2 vacant epoch candidate, 3 history size, 4 ttl ms (0: none),
--       5 pub/sub topic, 6 kind (j|t|b), 7 payload, 8 publisher client ('' when none),
--       9 publisher user
-- Numbers from the node are passed on as the strings they came in: a Lua number prints as
-- 1e+14 past 14 digits, which Redis refuses.
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  -- History was lost (expired, evicted, server restarted empty) or never existed: a new
  -- epoch, a new stream, and a new vacant epoch, so a position read while the channel had no
  -- stream matches nothing from now on.
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'top', 0)
  redis.call('SET', KEYS[3], ARGV[2])
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
redis.call('PUBLISH', ARGV[5], 'p ' .. offset .. ' ' .. epoch .. ' ' .. ARGV[6] .. ' '
  .. #ARGV[8] .. ' ' .. #ARGV[9] .. '\n' .. ARGV[8] .. ARGV[9] .. ARGV[7])
return {top, epoch}
