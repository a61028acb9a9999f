/**
 * A subscriber that joins, then stops reading (or, as the control, keeps reading), and
 * later reads again to learn how the server ended it. A client that stopped reading can
 * only learn why it was ended once it reads again, except where the transport can tell
 * it out of band (an HTTP/2 stream reset arrives even on a paused stream).
 */
import type { StallOutcome } from "./memory-jobs.js";

export interface StallingOptions {
  /** Stop reading once joined; false for a subscriber that reads throughout. */
  stall: boolean;
  /** `atMs` of an ending counts from `clock.origin` (performance.now() when writes began). */
  clock: { origin: number };
  /** Each message after the join, with its size on the wire. */
  onMessage?(bytes: number): void;
}

export interface StallingSubscriber {
  /** Resolves on the first message (a snapshot, or the stream socket's sync): the server then delivers every later write. */
  readonly joined: Promise<void>;
  /** How it was ended so far, if it was. */
  readonly ending: string | undefined;
  /** Reads again; resolves with how the stream ended, or "not ended" after `timeoutMs`. */
  resume(timeoutMs: number): Promise<StallOutcome>;
  close(): void;
}

/** A status or close reason that gives a number next to the word offset tells the client where to resume. */
const NAMES_OFFSET = /offset\D{0,40}\d+/i;

export abstract class StallingBase implements StallingSubscriber {
  readonly joined: Promise<void>;
  private settleJoin!: { resolve: () => void; reject: (error: Error) => void };
  private hasJoined = false;
  private paused = false;
  private resumed = false;
  private messagesAfterResume = 0;
  private bytesAfterResume = 0;
  private outcome: Omit<StallOutcome, "messagesAfterResume" | "bytesAfterResume"> | undefined;
  private onEnded: (() => void) | undefined;
  private closed = false;

  constructor(protected readonly options: StallingOptions) {
    this.joined = new Promise<void>((resolve, reject) => (this.settleJoin = { resolve, reject }));
    this.joined.catch(() => undefined);
  }

  get ending(): string | undefined {
    return this.outcome?.ending;
  }

  resume(timeoutMs: number): Promise<StallOutcome> {
    this.paused = false;
    this.resumed = true;
    this.resumeReading();
    return new Promise<StallOutcome>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve({
          ...(this.outcome ?? { ending: "not ended", detail: `nothing ended it within ${timeoutMs} ms of reading again`, namesOffset: false, atMs: NaN, whilePaused: false }),
          messagesAfterResume: this.messagesAfterResume,
          bytesAfterResume: this.bytesAfterResume,
        });
      };
      const timer = setTimeout(done, timeoutMs);
      if (this.outcome) done();
      else this.onEnded = done;
    });
  }

  close(): void {
    this.closed = true;
    this.settleJoin.reject(new Error("closed"));
    this.disconnect();
  }

  protected abstract pauseReading(): void;
  protected abstract resumeReading(): void;
  protected abstract disconnect(): void;

  /** The first message arrived: joined, and a stalling subscriber stops reading here. */
  protected markJoined(): void {
    if (this.hasJoined) return;
    this.hasJoined = true;
    this.settleJoin.resolve();
    if (this.options.stall) {
      this.paused = true;
      this.pauseReading();
    }
  }

  /** A message after the join. */
  protected received(bytes: number): void {
    if (this.resumed) {
      this.messagesAfterResume++;
      this.bytesAfterResume += bytes;
    }
    this.options.onMessage?.(bytes);
  }

  /** The stream ended; the first ending counts (a status comes before the close that follows it). */
  protected ended(ending: string, detail: string, evidence = detail): void {
    if (this.outcome !== undefined || this.closed) return;
    this.outcome = {
      ending,
      detail: detail.slice(0, 300),
      namesOffset: NAMES_OFFSET.test(evidence),
      atMs: Math.round(performance.now() - this.options.clock.origin),
      whilePaused: this.paused,
    };
    this.settleJoin.reject(new Error(`ended before it joined: ${ending} ${detail}`));
    this.onEnded?.();
  }
}

/** gRPC status names by number, as Connect spells them in upper case. */
const GRPC_CODES = [
  "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
];

export function grpcCodeName(code: number): string {
  return GRPC_CODES[code] ?? `grpc-status ${code}`;
}

/** The ending of a Connect end-of-stream frame: its error code in upper case, or OK. */
export function connectEnding(text: string): { ending: string; detail: string } {
  try {
    const end = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (!end.error) return { ending: "OK", detail: "end of stream without an error" };
    return { ending: (end.error.code ?? "unknown").toUpperCase(), detail: end.error.message ?? "" };
  } catch {
    return { ending: "malformed end of stream", detail: text };
  }
}
