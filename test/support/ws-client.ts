import { WebSocket, type ClientOptions } from "ws";
import type { JsonObject } from "../../src/index.js";

export interface Closed {
  code: number;
  reason: string;
}

/** A `ws` client that records what it receives, for the WebSocket bridge tests. */
export interface TestSocket {
  ws: WebSocket;
  /** Every JSON message received so far, in order. */
  messages: JsonObject[];
  /** Resolves with the first message (already received or still to come) that `match` accepts, after index `from`. */
  next(match: (message: JsonObject) => boolean, timeoutMs?: number, from?: number): Promise<JsonObject>;
  send(message: unknown): void;
  closed: Promise<Closed>;
  close(): Promise<Closed>;
}

/** `http://host:port` as the WebSocket URL of `path`. */
export function wsUrl(httpUrl: string, path = "/"): string {
  return httpUrl.replace(/^http/, "ws") + path;
}

/** Opens a socket and waits until it is open; rejects with the HTTP status of a refused handshake. */
export async function openSocket(url: string, options: ClientOptions = {}): Promise<TestSocket> {
  const ws = new WebSocket(url, options);
  const messages: JsonObject[] = [];
  const waiters = new Set<() => void>();
  ws.on("message", (data) => {
    messages.push(JSON.parse(String(data)) as JsonObject);
    for (const wake of [...waiters]) wake();
  });
  const closed = new Promise<Closed>((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("unexpected-response", (_req, res) => reject(new Error(`handshake refused: ${res.statusCode}`)));
    ws.once("error", reject);
  });
  ws.on("error", () => undefined);
  const next = (match: (message: JsonObject) => boolean, timeoutMs = 5000, from = 0) =>
    new Promise<JsonObject>((resolve, reject) => {
      const check = () => {
        const found = messages.slice(from).find(match);
        if (!found) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(found);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no matching message within ${timeoutMs} ms; received: ${JSON.stringify(messages).slice(0, 2000)}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return {
    ws,
    messages,
    next,
    send: (message) => ws.send(typeof message === "string" ? message : JSON.stringify(message)),
    closed,
    close: () => {
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close();
      return closed;
    },
  };
}

/** A join message of the stream socket. */
export function join(subscriptionId: string, streamName: string, groupId: string, extra: Record<string, unknown> = {}): JsonObject {
  return { type: "join", data: { subscriptionId, streamName, groupId, ...extra } } as JsonObject;
}

/** Matches the wrapper of one subscription with the given event type. */
export function eventOf(subscriptionId: string, type: string): (message: JsonObject) => boolean {
  return (message) => message.subscriptionId === subscriptionId && (message.event as JsonObject | undefined)?.type === type;
}
