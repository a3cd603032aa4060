/**
 * The Lua script behind every `RedisCheckpointStore` write. One script call is one checkpoint:
 * Redis runs a script to completion before it serves any other command, so readers see the
 * partition before the write or after it, never in between.
 *
 * Invariants of the script:
 *  1. Every check (fencing, key types) runs before the first write command, so a refused or
 *     failing call changes nothing. The `#!lua` shebang (Redis >= 7) makes Redis refuse the
 *     whole script up front when it is out of memory, instead of failing at a write half-way.
 *  2. Fencing compares numbers: a stored epoch greater than ARGV epoch, or a stored seq greater
 *     than ARGV seq, is refused with an error reply `WARDEN_FENCED epoch <stored>` /
 *     `WARDEN_FENCED seq <stored>`, which the store turns into `CheckpointFencedError`.
 *  3. Actor entries arrive sealed (checksummed by the client, `lib/checkpoint/codec.ts`) and are
 *     stored as given. The meta body needs `actorCount`, known only after the changes, so the
 *     client sends the meta JSON in two halves around it and the script seals it with
 *     `redis.sha1hex`: byte for byte what `sealEntry(meta)` gives in Node.
 *  4. All keys share one hash tag, so the script touches one slot and runs on Redis Cluster.
 *  5. The claim hash (fields `epoch`, `key`) is apart from the checkpoint: a write is fenced against
 *     the larger of the claimed and the stored epoch, and clearing the checkpoint keeps the claim.
 *  6. A large write sends its entries ahead in chunks, to a staging hash of its own (named after
 *     the write id, same hash tag, with a TTL); the script reads the staging hash before its
 *     first write, stores its entries with the ones it was given, and deletes it. Staged entries
 *     are invisible until the script runs, and a write that never runs (refused, failed, its
 *     writer dead) leaves only a staging hash that expires.
 *
 * Keys and arguments:
 *  - KEYS[1] meta hash (fields `epoch`, `seq`, `wid`, `body`), KEYS[2] actors hash (key -> sealed entry),
 *    KEYS[3] claim hash, KEYS[4] staging hash (invariant 6; absent when nothing was staged)
 *  - ARGV[1] epoch, ARGV[2] seq, ARGV[3] write id (changes with every write; readers use it to
 *    detect a write landing during a multi-call scan), ARGV[4] meta JSON before the count,
 *    ARGV[5] meta JSON after the count, ARGV[6] number of actor entries n, then n (key, sealed)
 *    pairs, then the removed keys.
 *  - Returns the number of actor entries stored after the write.
 */

/**
 * Name under which the script is registered on an ioredis client (`defineCommand`).
 *
 * @example
 * client.defineCommand(WRITE_COMMAND, { numberOfKeys: 4, lua: WRITE_SCRIPT });
 * await client[WRITE_COMMAND](metaKey, actorsKey, claimKey, stagingKey, '1', '42', 'w1', before, after, 1, 'alice', sealed);
 */
export const WRITE_COMMAND = 'wardenCheckpointWriteV3';

/** Name of the claim script on an ioredis client. */
export const CLAIM_COMMAND = 'wardenCheckpointClaimV1';

/** Name of the clear script on an ioredis client. */
export const CLEAR_COMMAND = 'wardenCheckpointClearV1';

/**
 * Arguments per HSET/HDEL call inside the script: Lua's `unpack` is limited by the C stack
 * (about 8000 values). Even, so (key, value) pairs never straddle two calls.
 *
 * @example
 * // 5,000 entries = 10,000 arguments = 10 HSET calls of LUA_CHUNK arguments each
 */
export const LUA_CHUNK = 1000;

/**
 * The checkpoint write script (see the module invariants for its keys and arguments).
 *
 * @example
 * client.defineCommand(WRITE_COMMAND, { numberOfKeys: 4, lua: WRITE_SCRIPT });
 */
export const WRITE_SCRIPT = `#!lua
local metaKey, actorsKey, claimKey, stagingKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local epoch, seq = tonumber(ARGV[1]), tonumber(ARGV[2])
if epoch == nil or seq == nil then
  return redis.error_reply('WARDEN_BADARG epoch and seq must be numbers')
end
-- Invariant 1: every check before the first write.
local stored = redis.call('HMGET', metaKey, 'epoch', 'seq')
local fence = tonumber(redis.call('HGET', claimKey, 'epoch') or '0') or 0
if stored[1] and (tonumber(stored[1]) or 0) > fence then fence = tonumber(stored[1]) end
if epoch < fence then
  return redis.error_reply('WARDEN_FENCED epoch ' .. string.format('%d', fence))
end
if stored[2] then
  local storedSeq = tonumber(stored[2])
  if storedSeq ~= nil and seq < storedSeq then
    return redis.error_reply('WARDEN_FENCED seq ' .. stored[2])
  end
end
redis.call('HLEN', actorsKey) -- fails with WRONGTYPE now rather than after a partial write
local staged = redis.call('HGETALL', stagingKey) -- invariant 6, read before the first write
local j = 1
while j <= #staged do
  local upto = math.min(#staged, j + ${LUA_CHUNK} - 1)
  redis.call('HSET', actorsKey, unpack(staged, j, upto))
  j = upto + 1
end
if #staged > 0 then redis.call('DEL', stagingKey) end
local n = tonumber(ARGV[6])
local i = 7
local last = 6 + 2 * n
while i <= last do
  local upto = math.min(last, i + ${LUA_CHUNK} - 1)
  redis.call('HSET', actorsKey, unpack(ARGV, i, upto))
  i = upto + 1
end
while i <= #ARGV do
  local upto = math.min(#ARGV, i + ${LUA_CHUNK} - 1)
  redis.call('HDEL', actorsKey, unpack(ARGV, i, upto))
  i = upto + 1
end
local count = redis.call('HLEN', actorsKey)
local body = ARGV[4] .. string.format('%d', count) .. ARGV[5]
redis.call('HSET', metaKey, 'epoch', ARGV[1], 'seq', ARGV[2], 'wid', ARGV[3], 'body', redis.sha1hex(body) .. body)
return count
`;

/**
 * The claim script (checkpoint port invariant 6): the next epoch (ARGV[1] empty) or the given one
 * if newer than every epoch claimed or written; the record key is set once (ARGV[2]) and kept.
 * KEYS[1] claim hash, KEYS[2] meta hash. Returns `{ epoch, key }`, or `WARDEN_FENCED claim <stored>`.
 *
 * @example
 * client.defineCommand(CLAIM_COMMAND, { numberOfKeys: 2, lua: CLAIM_SCRIPT });
 */
export const CLAIM_SCRIPT = `#!lua
local claimKey, metaKey = KEYS[1], KEYS[2]
local stored = tonumber(redis.call('HGET', claimKey, 'epoch') or '0') or 0
local written = tonumber(redis.call('HGET', metaKey, 'epoch') or '0') or 0
if written > stored then stored = written end
local epoch = stored + 1
if ARGV[1] ~= '' then
  epoch = tonumber(ARGV[1])
  if epoch == nil or epoch <= stored then
    return redis.error_reply('WARDEN_FENCED claim ' .. string.format('%d', stored))
  end
end
redis.call('HSET', claimKey, 'epoch', string.format('%d', epoch))
redis.call('HSETNX', claimKey, 'key', ARGV[2])
return { string.format('%d', epoch), redis.call('HGET', claimKey, 'key') }
`;

/**
 * The clear script (checkpoint port invariant 7): deletes the meta and the actors, carrying the
 * stored epoch over into the claim hash first. KEYS[1] meta, KEYS[2] actors, KEYS[3] claim; ARGV[1]
 * a record key in case the claim hash has none yet.
 *
 * @example
 * client.defineCommand(CLEAR_COMMAND, { numberOfKeys: 3, lua: CLEAR_SCRIPT });
 */
export const CLEAR_SCRIPT = `#!lua
local metaKey, actorsKey, claimKey = KEYS[1], KEYS[2], KEYS[3]
local written = tonumber(redis.call('HGET', metaKey, 'epoch') or '0') or 0
local claimed = tonumber(redis.call('HGET', claimKey, 'epoch') or '0') or 0
if written > claimed then
  redis.call('HSET', claimKey, 'epoch', string.format('%d', written))
  redis.call('HSETNX', claimKey, 'key', ARGV[1])
end
redis.call('DEL', metaKey, actorsKey)
return 1
`;
