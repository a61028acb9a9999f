/**
 * The message every fan-out system delivers: the stream socket's wrapper shape, so the
 * peers send as many bytes per delivery as iii-stream's WebSocket does.
 */
export interface ChangeWrapper {
  type: "stream";
  timestamp: number;
  streamName: string;
  groupId: string;
  id: string;
  event: { type: "update"; data: { i: number } & Record<string, unknown> };
  offset: number;
  revision: number;
}

/** What a peer's writer sends; `i` is the write's index, by which the load times it. */
export interface PeerWrite {
  groupId: string;
  itemId: string;
  data: { i: number } & Record<string, unknown>;
}

export function wrapWrite(streamName: string, write: PeerWrite, offset: number): ChangeWrapper {
  return {
    type: "stream",
    timestamp: Date.now(),
    streamName,
    groupId: write.groupId,
    id: write.itemId,
    event: { type: "update", data: write.data },
    offset,
    revision: offset,
  };
}
