-- A user's connections over every node: a sorted set of client ids scored by expiry (server
-- time, ms). A node refreshes the connections it holds; a crashed node's expire.
-- KEYS[1] the user's connections zset
-- ARGV: 1 op (add|remove|refresh), 2 lifetime ms, then
--       add: 3 limit, 4 client; remove: 3 client; refresh: 3.. clients
-- add returns 1 when the client is counted (it was already, or the user holds fewer than
-- the limit), 0 when refused; remove and refresh return 1.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local life = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local op = ARGV[1]
if op == 'add' then
  local client = ARGV[4]
  if not redis.call('ZSCORE', KEYS[1], client)
      and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
    return 0
  end
  redis.call('ZADD', KEYS[1], now + life, client)
  redis.call('PEXPIRE', KEYS[1], life * 2)
elseif op == 'remove' then
  redis.call('ZREM', KEYS[1], ARGV[3])
elseif op == 'refresh' then
  -- Re-added even if they expired while Redis stalled: they are open.
  for i = 3, #ARGV do
    redis.call('ZADD', KEYS[1], now + life, ARGV[i])
  end
  redis.call('PEXPIRE', KEYS[1], life * 2)
end
return 1
