-- Read a channel's position and the publications from a stream id on, in one consistent step.
-- It creates nothing for the channel: reading a channel that has no stream leaves its keys as
-- they were. The slot's vacant epoch is set when it is missing or was set under another
-- replication id (before a failover), so that two reads of empty channels agree until a
-- stream is created in the slot, and a position read from an old master continues into no
-- stream of the new one.
-- KEYS[1] meta hash (top, epoch, b)   KEYS[2] history stream
-- KEYS[3] the slot's vacant epoch (hash: e, r); all three share one hash slot
-- ARGV: 1 first stream id to read, built by the node ('' reads only the position),
--       2 count, 3 the vacant epoch to report when Redis holds none,
--       4 direction: 'fwd' (the oldest from the first id on) or 'rev' (the newest down to
--       the first id, newest first: XREVRANGE reads from the end, so COUNT bounds the work)
-- Returns {top, epoch, vacant_before, id1, kind1, client1, user1, payload1, id2, ...}, where
-- vacant_before is the vacant epoch the stream replaced ('' for none).
local meta = redis.call('HMGET', KEYS[1], 'top', 'epoch', 'b')
if not meta[2] then
  -- No stream: offset 0 in the vacant epoch, which every new stream replaces.
  local replid = string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)')
  local vacant = redis.call('HMGET', KEYS[3], 'e', 'r')
  if not vacant[1] or vacant[2] ~= replid then
    redis.call('HSET', KEYS[3], 'e', ARGV[3], 'r', replid)
    return {'0', ARGV[3], ''}
  end
  return {'0', vacant[1], ''}
end
local out = {meta[1], meta[2], meta[3] or ''}
if ARGV[1] ~= '' then
  local entries
  if ARGV[4] == 'rev' then
    entries = redis.call('XREVRANGE', KEYS[2], '+', ARGV[1], 'COUNT', ARGV[2])
  else
    entries = redis.call('XRANGE', KEYS[2], ARGV[1], '+', 'COUNT', ARGV[2])
  end
  for _, entry in ipairs(entries) do
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
