/**
 * The `websocket` transport: every view of a client joined on one stream socket, each
 * under its own subscription id. When the socket goes, all views are lost together and
 * rejoin together on the next one, each from its last applied offset, after the
 * client's shared backoff. A join that fails alone (the server's `error` event) is
 * retried alone.
 */
import { ErrorCode, StreamError, isFinal, socketError } from "./errors.js";
import type { LiveView, ViewMessage, Verdict } from "./live-view.js";
import type { ClientSocket, Platform } from "./platform.js";
import type { Reconnector } from "./reconnector.js";
import type { JsonValue } from "./values.js";

interface Member {
  view: LiveView<unknown>;
  subscriptionId: string | undefined;
  /** Failed joins in a row, for the member's own backoff. */
  failures: number;
  retryTimer: ReturnType<typeof setTimeout> | undefined;
}

/** Close codes after which rejoining cannot help. */
const FINAL_CLOSES: Record<number, ErrorCode> = {
  4401: ErrorCode.Unauthenticated,
  4413: ErrorCode.InvalidArgument,
};

export class SocketHub {
  private socket: ClientSocket | undefined;
  private open = false;
  private readonly members = new Set<Member>();
  private readonly bySubscription = new Map<string, Member>();
  private nextId = 0;
  private generation = 0;
  private lastHeard = 0;
  private watchdog: ReturnType<typeof setInterval> | undefined;
  private waiting = false;
  private closed = false;
  private readonly closing = new AbortController();

  constructor(
    private readonly url: string,
    private readonly headers: Record<string, string>,
    private readonly platform: Platform,
    private readonly reconnector: Reconnector,
    private readonly heartbeatIntervalMs: number,
  ) {}

  add(view: LiveView<unknown>): void {
    const member: Member = { view, subscriptionId: undefined, failures: 0, retryTimer: undefined };
    this.members.add(member);
    view.onClose(() => this.remove(member));
    if (this.open) this.join(member);
    else this.connect();
  }

  close(): void {
    this.closed = true;
    this.closing.abort();
    for (const member of [...this.members]) member.view.close();
    this.drop();
  }

  private remove(member: Member): void {
    clearTimeout(member.retryTimer);
    this.members.delete(member);
    this.leave(member);
    // The last view gone: the socket has nothing to carry.
    if (this.members.size === 0) this.drop();
  }

  private connect(): void {
    if (this.socket || this.waiting || this.closed || this.members.size === 0) return;
    this.generation = this.reconnector.generation;
    let current: ClientSocket | undefined;
    const mine = () => current !== undefined && current === this.socket;
    current = this.socket = this.platform.openSocket(this.url, this.headers, {
      open: () => {
        if (!mine()) return;
        this.open = true;
        this.lastHeard = Date.now();
        for (const member of this.members) this.join(member);
      },
      message: (text) => {
        if (!mine()) return;
        this.lastHeard = Date.now();
        this.receive(text);
      },
      alive: () => {
        if (mine()) this.lastHeard = Date.now();
      },
      close: (code, reason) => {
        if (mine()) this.lost(code, reason, false);
      },
    });
    if (this.platform.seesPings) {
      this.lastHeard = Date.now();
      this.watchdog = setInterval(() => {
        if (mine() && Date.now() - this.lastHeard > 2 * this.heartbeatIntervalMs) this.lost(1006, "silent", true);
      }, Math.max(10, this.heartbeatIntervalMs / 2));
      (this.watchdog as { unref?: () => void }).unref?.();
    }
  }

  /** Stops using the socket (closing it), without touching the views. */
  private drop(): void {
    clearInterval(this.watchdog);
    const socket = this.socket;
    this.socket = undefined;
    this.open = false;
    this.bySubscription.clear();
    for (const member of this.members) member.subscriptionId = undefined;
    socket?.close();
  }

  private lost(code: number, reason: string, dead: boolean): void {
    this.drop();
    const final = FINAL_CLOSES[code];
    if (final) {
      const error = new StreamError(final, `the server closed the stream socket with ${code}${reason ? `: ${reason}` : ""}`);
      for (const member of [...this.members]) member.view.fail(error);
      return;
    }
    for (const member of this.members) member.view.lost();
    this.waiting = true;
    void this.reconnector.retry(this.generation, dead, this.closing.signal).then(() => {
      this.waiting = false;
      this.connect();
    });
  }

  private join(member: Member): void {
    if (!this.socket || !this.open || member.view.closed) return;
    this.leave(member);
    const { streamName, groupId, itemId } = member.view.target;
    const fromOffset = member.view.resumeFrom();
    member.view.begin();
    const subscriptionId = `v${++this.nextId}`;
    member.subscriptionId = subscriptionId;
    this.bySubscription.set(subscriptionId, member);
    this.socket.send(JSON.stringify({ type: "join", data: { subscriptionId, streamName, groupId, id: itemId ?? null, fromOffset, chunks: true } }));
  }

  private leave(member: Member): void {
    const subscriptionId = member.subscriptionId;
    if (subscriptionId === undefined) return;
    member.subscriptionId = undefined;
    this.bySubscription.delete(subscriptionId);
    if (this.open) this.socket?.send(JSON.stringify({ type: "leave", data: { subscriptionId } }));
  }

  private receive(text: string): void {
    let wrapper: Wrapper;
    try {
      wrapper = JSON.parse(text) as Wrapper;
    } catch {
      return;
    }
    const member = this.bySubscription.get(wrapper?.subscriptionId as string);
    if (!member) return; // a subscription left meanwhile
    const event = wrapper.event ?? {};
    let verdict: Verdict;
    if (event.type === "unauthorized") {
      verdict = { fail: new StreamError(ErrorCode.PermissionDenied, "the server's stream:join handler refused the subscription") };
    } else if (event.type === "error") {
      const error = socketError(event.code, event.message);
      verdict = isFinal(error) ? { fail: error } : { restart: "resume", why: error.message };
      member.failures++;
    } else {
      const message = toViewMessage(wrapper, member.view.target.itemId !== undefined);
      if (!message) return;
      verdict = member.view.receive(message);
      if (verdict === undefined && member.view.status === "live") member.failures = 0;
    }
    if (verdict === undefined) return;
    if ("fail" in verdict) return member.view.fail(verdict.fail);
    this.leave(member);
    member.view.lost(verdict.restart === "fresh");
    const ceiling = member.failures === 0 ? 0 : this.reconnector.ceiling(member.failures - 1);
    member.retryTimer = setTimeout(() => this.join(member), Math.random() * ceiling);
  }
}

interface Wrapper {
  subscriptionId?: unknown;
  id?: string | null;
  timestamp?: number;
  offset?: number;
  revision?: number;
  event?: {
    type?: string;
    data?: JsonValue;
    items?: Array<{ id: string; revision: number; updatedAtMs?: number }>;
    more?: boolean;
    event?: { type: string; data: JsonValue };
    code?: unknown;
    message?: unknown;
  };
}

function toViewMessage(wrapper: Wrapper, itemView: boolean): ViewMessage | undefined {
  const event = wrapper.event!;
  const offset = wrapper.offset ?? 0;
  const timestampMs = wrapper.timestamp ?? 0;
  switch (event.type) {
    case "sync": {
      const rows = event.items ?? [];
      const values = itemView ? [event.data ?? null] : ((event.data ?? []) as JsonValue[]);
      const items = rows.map((row, index) => ({
        itemId: row.id,
        data: values[index],
        revision: row.revision,
        updatedAtMs: row.updatedAtMs ?? timestampMs,
      }));
      return { kind: "snapshot", items, offset, more: event.more === true };
    }
    case "create":
    case "update":
    case "delete":
      return { kind: "change", type: event.type, itemId: wrapper.id ?? "", data: event.data ?? null, revision: wrapper.revision ?? 0, offset, timestampMs };
    case "event":
      return {
        kind: "event",
        type: event.event?.type ?? "",
        itemId: wrapper.id ?? undefined,
        data: event.event?.data ?? null,
        offset,
        timestampMs,
      };
    default:
      return undefined;
  }
}
