/**
 * Keeps a view live over `Subscribe` (Connect, gRPC or gRPC-Web): one stream at a time,
 * restarted after a loss from the view's last applied offset, after the client's shared
 * backoff. A stream silent for twice the heartbeat interval is taken for a dead
 * connection (a cut that sent no reset), which the client then renews.
 */
import type { Client } from "@connectrpc/connect";
import { ChangeType, type StreamService, type SubscribeResponse } from "../../gen/iii/stream/v1/stream_pb.js";
import { isFinal, toStreamError } from "./errors.js";
import type { LiveView, ViewMessage, Verdict } from "./live-view.js";
import type { Reconnector } from "./reconnector.js";
import { fromValue, toNumber } from "./values.js";
import { opsFromWire } from "./wire-ops.js";

export interface RpcConnection {
  readonly reconnector: Reconnector;
  /** The current connection's client: a renewed connection gives a new one. */
  rpc(): Client<typeof StreamService>;
  readonly heartbeatIntervalMs: number;
}

export function runRpcWatch(view: LiveView<unknown>, connection: RpcConnection): void {
  const closing = new AbortController();
  view.onClose(() => closing.abort());
  void (async () => {
    let generation = connection.reconnector.generation;
    while (!view.closed) {
      const outcome = await oneStream(view, connection, closing.signal);
      if (view.closed) return;
      if ("fail" in outcome) return view.fail(outcome.fail);
      view.lost(outcome.fresh);
      generation = await connection.reconnector.retry(generation, outcome.dead, closing.signal);
    }
  })();
}

type Outcome = { fail: ReturnType<typeof toStreamError> } | { dead: boolean; fresh: boolean };

async function oneStream(view: LiveView<unknown>, connection: RpcConnection, closing: AbortSignal): Promise<Outcome> {
  const abort = new AbortController();
  const stop = () => abort.abort();
  closing.addEventListener("abort", stop);
  let lastHeard = Date.now();
  let silent = false;
  const watchdog = setInterval(() => {
    if (Date.now() - lastHeard <= 2 * connection.heartbeatIntervalMs) return;
    silent = true;
    abort.abort();
  }, Math.max(10, connection.heartbeatIntervalMs / 2));
  (watchdog as { unref?: () => void }).unref?.();
  const { streamName, groupId, itemId } = view.target;
  const fromOffset = view.resumeFrom();
  const deltas = view.takeDeltas();
  view.begin();
  try {
    const stream = connection.rpc().subscribe(
      { streamName, groupId, itemId, fromOffset: fromOffset === undefined ? undefined : BigInt(fromOffset), deltas },
      { signal: abort.signal },
    );
    for await (const response of stream) {
      lastHeard = Date.now();
      const message = toViewMessage(response);
      if (!message) continue;
      if (message === UNREADABLE_DELTA) {
        view.skipDeltas();
        return { dead: false, fresh: false };
      }
      const verdict: Verdict = view.receive(message);
      if (verdict === undefined) continue;
      if ("fail" in verdict) return verdict;
      return { dead: false, fresh: verdict.restart === "fresh" };
    }
    // The server ends a Subscribe only with an error; a clean end is a lost connection.
    return { dead: false, fresh: false };
  } catch (reason) {
    if (silent) return { dead: true, fresh: false };
    const error = toStreamError(reason);
    if (!closing.aborted && isFinal(error)) return { fail: error };
    return { dead: false, fresh: false };
  } finally {
    clearInterval(watchdog);
    closing.removeEventListener("abort", stop);
    abort.abort();
  }
}

const CHANGE_TYPES = { [ChangeType.CREATE]: "create", [ChangeType.UPDATE]: "update", [ChangeType.DELETE]: "delete" } as const;

/** A delta with an op this client does not know: the stream resumes without deltas. */
const UNREADABLE_DELTA = Symbol("unreadable delta");

function toViewMessage(response: SubscribeResponse): ViewMessage | typeof UNREADABLE_DELTA | undefined {
  const message = response.message;
  switch (message.case) {
    case "snapshot":
      return {
        kind: "snapshot",
        items: message.value.items.map((item) => ({
          itemId: item.itemId,
          data: fromValue(item.data),
          revision: toNumber(item.revision),
          updatedAtMs: toNumber(item.updatedAtMs),
        })),
        offset: toNumber(message.value.offset),
        more: message.value.more,
      };
    case "change": {
      const change = message.value;
      const type = CHANGE_TYPES[change.type as keyof typeof CHANGE_TYPES];
      if (type === undefined) return undefined;
      const ops = change.ops.length > 0 ? opsFromWire(change.ops) : undefined;
      if (change.ops.length > 0 && ops === undefined) return UNREADABLE_DELTA;
      return {
        kind: "change",
        type,
        itemId: change.itemId,
        data: fromValue(change.data),
        ...(ops ? { ops } : {}),
        revision: toNumber(change.revision),
        offset: toNumber(change.offset),
        timestampMs: toNumber(change.timestampMs),
        ...(change.expired ? { expired: true as const } : {}),
      };
    }
    case "event":
      return {
        kind: "event",
        type: message.value.type,
        itemId: message.value.itemId,
        data: fromValue(message.value.data),
        offset: toNumber(message.value.offset),
        timestampMs: toNumber(message.value.timestampMs),
      };
    case "heartbeat":
      return { kind: "heartbeat", offset: toNumber(message.value.offset) };
    default:
      return undefined;
  }
}
