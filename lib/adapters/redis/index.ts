/**
 * `warden/redis`: the Redis checkpoint store (RedisCheckpointStore) arrives with issue 4.
 * Until then this entry point exports nothing, so importing it is not an error but gives no API.
 */
export {};
