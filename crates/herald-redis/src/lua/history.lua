-- Read a channel's position and the publications after an offset, in one consistent step.
-- KEYS[1] meta hash (top, epoch)   KEYS[2] history stream
-- ARGV: 1 epoch candidate, 2 after, 3 limit, 4 ttl ms (0: none)
-- Returns {top, epoch, offset1, kind1, client1, user1, payload1, offset2, ...}.
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  -- Reading creates the epoch, so a subscriber's position stays valid for the first publish.
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'top', 0)
  local ttl = tonumber(ARGV[4])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
end
local out = {redis.call('HGET', KEYS[1], 'top'), epoch}
local limit = tonumber(ARGV[3])
if limit > 0 then
  local first = (tonumber(ARGV[2]) + 1) .. '-0'
  for _, entry in ipairs(redis.call('XRANGE', KEYS[2], first, '+', 'COUNT', limit)) do
    local f = entry[2]
    -- Fields were written in the order k, c, u, d.
    out[#out + 1] = entry[1]
    out[#out + 1] = f[2]
    out[#out + 1] = f[4]
    out[#out + 1] = f[6]
    out[#out + 1] = f[8]
  end
end
return out
