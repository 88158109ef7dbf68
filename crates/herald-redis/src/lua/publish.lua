-- Publish one publication, atomically: offset, history, TTLs, epoch and fan-out in one step,
-- so every node hears a channel's publications in offset order.
-- KEYS[1] meta hash (top, epoch)   KEYS[2] history stream
-- ARGV: 1 epoch candidate, 2 history size, 3 ttl ms (0: none), 4 pub/sub topic,
--       5 kind (j|t|b), 6 payload, 7 publisher client ('' when none), 8 publisher user
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  -- History was lost (expired, evicted, server restarted empty): a new epoch, a new stream.
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'top', 0)
end
local top = redis.call('HINCRBY', KEYS[1], 'top', 1)
local size = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
if size > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', size, top .. '-0',
    'k', ARGV[5], 'c', ARGV[7], 'u', ARGV[8], 'd', ARGV[6])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
end
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
redis.call('PUBLISH', ARGV[4], 'p ' .. top .. ' ' .. epoch .. ' ' .. ARGV[5] .. ' '
  .. #ARGV[7] .. ' ' .. #ARGV[8] .. '\n' .. ARGV[7] .. ARGV[8] .. ARGV[6])
return {top, epoch}
