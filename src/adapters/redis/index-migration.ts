import type { KeyLayout } from "./key-layout.js";
import type { RedisClient } from "./scripts.js";

/** Members moved per SSCAN and ZADD: bounded commands, so that a huge index never blocks Redis for long. */
const BATCH = 1000;

/**
 * Moves a group index of an earlier version (SETs, see KeyLayout.legacyStreamGroups)
 * into the ZSETs that GroupIndex pages, once: when the old SET of stream names is gone
 * there is nothing left to do.
 *
 * Safe to interrupt and to run in several processes at once: every step copies (ZADD
 * adds a name at most once) before it deletes, a stream's groups are copied before the
 * stream is listed, and the SET of stream names goes last, so a later run finishes what
 * an interrupted one left. A process whose scan of a SET ends early because another
 * process deleted it loses nothing: that process deleted it only after copying all of it.
 *
 * Processes of the earlier version still running go on writing the SETs; a process
 * started after the last of them stopped moves what they added.
 */
export async function migrateLegacyIndex(client: RedisClient, keys: KeyLayout): Promise<void> {
  if ((await client.exists(keys.legacyStreams)) === 0) return;
  let cursor = "0";
  do {
    const [next, streamNames] = await client.sscan(keys.legacyStreams, cursor, "COUNT", BATCH);
    for (const streamName of streamNames) {
      await moveSet(client, keys.legacyStreamGroups(streamName), keys.streamGroups(streamName));
    }
    if (streamNames.length > 0) await client.zadd(keys.streams, ...scoredZero(streamNames));
    cursor = next;
  } while (cursor !== "0");
  await client.unlink(keys.legacyStreams);
}

async function moveSet(client: RedisClient, from: string, to: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, members] = await client.sscan(from, cursor, "COUNT", BATCH);
    if (members.length > 0) await client.zadd(to, ...scoredZero(members));
    cursor = next;
  } while (cursor !== "0");
  // UNLINK frees a large set in the background instead of blocking Redis.
  await client.unlink(from);
}

function scoredZero(members: string[]): string[] {
  return members.flatMap((member) => ["0", member]);
}
