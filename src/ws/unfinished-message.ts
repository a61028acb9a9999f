import type { WebSocket } from "ws";

/**
 * Whether a fragmented message has begun on this socket and not ended. ws keeps the
 * opcode of such a message in its Receiver's `_fragmented` (ws 8; test/ws-limits.test.ts
 * checks it still does). A client stuck inside one frame cannot answer pings, so the
 * ping sweep drops it; one that sends a message as many small fragments can answer
 * every ping between them, and only this tells that it never finishes.
 */
export function hasUnfinishedMessage(ws: WebSocket): boolean {
  const receiver = (ws as unknown as { _receiver?: { _fragmented?: unknown } })._receiver;
  return typeof receiver?._fragmented === "number" && receiver._fragmented !== 0;
}
