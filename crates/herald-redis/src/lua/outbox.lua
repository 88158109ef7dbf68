-- The webhook outbox: which nodes hold which tracked things, and the events their changes
-- make (see herald_hub::broker::Tracked for the rules).
-- KEYS[1] the outbox stream (fields k = encoded thing, h = 1 held / 0 released; or j = JSON)
-- KEYS[2] the nodes zset (node -> alive until, ms)
-- KEYS[3] the pending releases zset (encoded thing -> grace end, ms)
-- KEYS[4] the delivery lease (string: the holder's node id)
-- ARGV[1] the key prefix of the per-thing holder sets (PREFIX k:THING) and the per-node held
--         sets (PREFIX h:NODE); ARGV[2] op; ARGV[3] max events; ARGV[4] grace ms; then
--   track: 5 node, 6 thing, 7 held (1 or 0)          -> {appended, dropped}
--   push:  5 JSON                                     -> {appended, dropped}
--   lead:  5 node, 6 node life ms, 7 lease ms         -> {leader, appended, dropped, waiting,
--                                                         rejoined}
local out, nodes, pending, lease = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prefix, op = ARGV[1], ARGV[2]
local max, grace = tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local appended, dropped = 0, 0

local function emit(...)
  if redis.call('XLEN', out) >= max then
    dropped = dropped + 1
  else
    redis.call('XADD', out, '*', ...)
    appended = appended + 1
  end
end

-- The last holder gone: the release waits out the grace delay (or is emitted now).
local function vacated(thing)
  if redis.call('SCARD', prefix .. 'k:' .. thing) == 0 then
    if grace == 0 then
      emit('k', thing, 'h', '0')
    else
      redis.call('ZADD', pending, now + grace, thing)
    end
  end
end

if op == 'track' then
  local node, thing = ARGV[5], ARGV[6]
  local holders = prefix .. 'k:' .. thing
  if ARGV[7] == '1' then
    local first = redis.call('SCARD', holders) == 0
    if redis.call('SADD', holders, node) == 1 then
      redis.call('SADD', prefix .. 'h:' .. node, thing)
      if first and redis.call('ZREM', pending, thing) == 0 then
        emit('k', thing, 'h', '1')
      end
    end
  elseif redis.call('SREM', holders, node) == 1 then
    redis.call('SREM', prefix .. 'h:' .. node, thing)
    vacated(thing)
  end
  return {appended, dropped}
elseif op == 'push' then
  emit('j', ARGV[5])
  return {appended, dropped}
elseif op == 'lead' then
  local node = ARGV[5]
  local rejoined = redis.call('ZADD', nodes, now + tonumber(ARGV[6]), node)
  local holder = redis.call('GET', lease)
  if holder and holder ~= node then
    return {0, 0, 0, redis.call('XLEN', out), rejoined}
  end
  redis.call('SET', lease, node, 'PX', tonumber(ARGV[7]))
  -- A dead node's things are released as if it had let them go.
  local dead = redis.call('ZRANGEBYSCORE', nodes, '-inf', now, 'LIMIT', 0, 16)
  for _, d in ipairs(dead) do
    redis.call('ZREM', nodes, d)
    local held = prefix .. 'h:' .. d
    for _, thing in ipairs(redis.call('SMEMBERS', held)) do
      redis.call('SREM', prefix .. 'k:' .. thing, d)
      vacated(thing)
    end
    redis.call('DEL', held)
  end
  local due = redis.call('ZRANGEBYSCORE', pending, '-inf', now, 'LIMIT', 0, 1000)
  for _, thing in ipairs(due) do
    redis.call('ZREM', pending, thing)
    if redis.call('SCARD', prefix .. 'k:' .. thing) == 0 then
      emit('k', thing, 'h', '0')
    end
  end
  return {1, appended, dropped, redis.call('XLEN', out), rejoined}
end
return redis.error_reply('unknown op')
