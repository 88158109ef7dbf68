-- Presence: a sorted set of client ids scored by expiry (server time, ms) and a hash
-- client -> user. Expired members (their node stopped refreshing them) are removed and
-- announced as leaves by whichever node sweeps first.
-- KEYS[1] members zset   KEYS[2] users hash
-- ARGV: 1 op (add|remove|list), 2 pub/sub topic, 3 member lifetime ms, 4 the publish
--       command (PUBLISH, or SPUBLISH on a Redis Cluster), then clients and users in pairs
--       (add, remove). The keys and the topic share one hash slot.
-- A node's refresh is `add` of every member it holds: a member that expired or was swept
-- while Redis stalled is added back (and its join announced again), not lost for good.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local life = tonumber(ARGV[3])
local function announce(kind, client, user)
  redis.call(ARGV[4], ARGV[2], kind .. ' ' .. #client .. ' ' .. #user .. '\n' .. client .. user)
end
for _, client in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  local user = redis.call('HGET', KEYS[2], client) or ''
  redis.call('ZREM', KEYS[1], client)
  redis.call('HDEL', KEYS[2], client)
  announce('l', client, user)
end
local op = ARGV[1]
for i = 5, #ARGV, 2 do
  local client, user = ARGV[i], ARGV[i + 1]
  if op == 'add' then
    local added = redis.call('ZADD', KEYS[1], now + life, client)
    redis.call('HSET', KEYS[2], client, user)
    if added == 1 then announce('j', client, user) end
  elseif op == 'remove' then
    if redis.call('ZREM', KEYS[1], client) == 1 then
      redis.call('HDEL', KEYS[2], client)
      announce('l', client, user)
    end
  end
end
if op == 'add' then
  redis.call('PEXPIRE', KEYS[1], life * 2)
  redis.call('PEXPIRE', KEYS[2], life * 2)
end
if op ~= 'list' then return {} end
local out = {}
for _, client in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  out[#out + 1] = client
  out[#out + 1] = redis.call('HGET', KEYS[2], client) or ''
end
return out
