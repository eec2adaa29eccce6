/**
 * The registry's two Lua scripts. Every key they touch is declared (KEYS)
 * and carries the hash tag `{<keyPrefix>:peers}`, so on Redis Cluster each
 * script runs on one slot, as Cluster requires.
 *
 * - `{<keyPrefix>:peers}:<instance>`: an instance's entry (JSON), written
 *   with `SET … PX <peerTimeout>` every heartbeat: it disappears on its own
 *   when the instance stops writing it.
 * - `{<keyPrefix>:peers}`: the set of instance ids, so listing is one read of
 *   a handful of keys, never a SCAN of the keyspace (which, beside the rate
 *   limiter's keys, can hold millions, and on Cluster would have to visit
 *   every master). Ids whose entry has expired are removed when listed.
 */
import { defineScript } from 'redis';

/**
 * KEYS[1] the id set, KEYS[2] this instance's entry; ARGV[1] the id,
 * ARGV[2] the entry, ARGV[3] the TTL (ms). Writes the entry, adds the id,
 * keeps the set alive at least as long as the entry (so the set itself goes
 * once every instance is gone) and returns every id in the set.
 */
export const BEAT_SCRIPT = `
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return redis.call('SMEMBERS', KEYS[1])
`;

/**
 * KEYS[1] the id set, KEYS[2..n] entries; ARGV[i] the id of KEYS[i + 1].
 * Returns {entry, PTTL} for each entry that exists and removes from the set
 * the ids whose entry has expired (atomically: an instance that writes its
 * entry again is never removed by a listing that saw it gone).
 */
export const LIST_SCRIPT = `
local out = {}
for i = 2, #KEYS do
  local value = redis.call('GET', KEYS[i])
  if value then
    out[#out + 1] = value
    out[#out + 1] = redis.call('PTTL', KEYS[i])
  else
    redis.call('SREM', KEYS[1], ARGV[i - 1])
  end
end
return out
`;

export const peerScripts = {
  peersBeat: defineScript({
    NUMBER_OF_KEYS: 2,
    SCRIPT: BEAT_SCRIPT,
    parseCommand(parser, index: string, entryKey: string, id: string, entry: string, ttlMs: number) {
      parser.pushKey(index);
      parser.pushKey(entryKey);
      parser.push(id, entry, String(ttlMs));
    },
    transformReply: (reply: unknown) => reply as unknown as readonly string[],
  }),
  peersList: defineScript({
    // The number of keys varies: it is pushed by parseCommand.
    SCRIPT: LIST_SCRIPT,
    parseCommand(parser, index: string, entries: readonly { readonly key: string; readonly id: string }[]) {
      parser.push(String(entries.length + 1));
      parser.pushKey(index);
      for (const entry of entries) parser.pushKey(entry.key);
      parser.push(...entries.map((entry) => entry.id));
    },
    transformReply: (reply: unknown) => reply as unknown as readonly (string | number)[],
  }),
};

export type PeerScripts = typeof peerScripts;
