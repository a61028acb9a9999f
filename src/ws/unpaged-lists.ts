import type { JsonValue } from "../core/json.js";
import type { StreamEngine } from "../core/engine.js";
import { itemBytes } from "../core/encoded-size.js";
import { ErrorCode, StreamError } from "../core/errors.js";
import { GROUP_PAGE_SIZES, GROUPS_PER_STREAM, ITEM_PAGE_SIZES } from "../core/page-size.js";

/*
 * The worker protocol's lists answer in one message, as the reference's clients expect.
 * They are gathered from the paged lists, so no single read holds a large group, and
 * refused once they pass the engine's maxUnpagedBytes, before a message too large to
 * encode or send is built. Like List paging, they are not one consistent snapshot: an
 * item written meanwhile may or may not be in the answer, but none comes twice.
 */

/** `stream::list`: the values of a group's items in insertion order. */
export async function listWholeGroup(engine: StreamEngine, streamName: string, groupId: string): Promise<JsonValue[]> {
  const values: JsonValue[] = [];
  let bytes = 0;
  let pageToken = "";
  do {
    const page = await engine.list(streamName, groupId, { pageSize: ITEM_PAGE_SIZES.max, pageToken });
    for (const item of page.entries) {
      bytes += itemBytes(item);
      values.push(item.data);
    }
    checkSize(engine, bytes, `group ${JSON.stringify(groupId)}`, "List");
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return values;
}

/** `stream::list_groups`: every non-empty group of a stream, sorted. */
export async function listWholeStream(engine: StreamEngine, streamName: string): Promise<string[]> {
  const groups: string[] = [];
  let bytes = 0;
  let pageToken = "";
  do {
    const page = await engine.listGroups(streamName, { pageSize: GROUP_PAGE_SIZES.max, pageToken });
    for (const group of page.entries) {
      bytes += group.length + 3;
      groups.push(group);
    }
    checkSize(engine, bytes, `stream ${JSON.stringify(streamName)}`, "ListGroups");
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return groups;
}

/** `stream::list_all`: every stream with all of its groups. */
export async function listWholeStore(engine: StreamEngine): Promise<Array<{ streamName: string; groups: string[] }>> {
  const streams: Array<{ streamName: string; groups: string[] }> = [];
  let bytes = 0;
  let pageToken = "";
  do {
    const page = await engine.listAll({ pageToken, groupsPerStream: GROUPS_PER_STREAM.max });
    for (const stream of page.entries) {
      const groups = stream.groupCount > stream.groups.length ? await listWholeStream(engine, stream.streamName) : stream.groups;
      bytes += stream.streamName.length + groups.reduce((sum, group) => sum + group.length + 3, 0);
      checkSize(engine, bytes, "the store's list of streams and groups", "ListAll and ListGroups");
      streams.push({ streamName: stream.streamName, groups });
    }
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return streams;
}

function checkSize(engine: StreamEngine, bytes: number, what: string, paged: string): void {
  if (bytes <= engine.maxUnpagedBytes) return;
  throw new StreamError(
    ErrorCode.ResourceExhausted,
    `${what} is larger than one answer may be (${engine.maxUnpagedBytes} bytes); page through it with ${paged}`,
  );
}
