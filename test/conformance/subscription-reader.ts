import type { Client } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { StreamService, SubscribeRequestSchema, SubscribeResponse } from "../../gen/iii/stream/v1/stream_pb.js";

type Message = SubscribeResponse["message"];
type Kind = Exclude<Message["case"], undefined>;
type Payload<K extends Kind> = Extract<Message, { case: K }>["value"];

/**
 * Guards every read: a missing message must fail the test, not hang it. Generous,
 * because it only bounds a wait for something that should already be on its way.
 */
const READ_TIMEOUT_MS = 10_000;

/** Reads a Subscribe stream one message at a time. Always `close()` it. */
export class SubscriptionReader {
  private readonly abort = new AbortController();
  private readonly iterator: AsyncIterator<SubscribeResponse>;

  constructor(client: Client<typeof StreamService>, request: MessageInitShape<typeof SubscribeRequestSchema>) {
    this.iterator = client.subscribe(request, { signal: this.abort.signal })[Symbol.asyncIterator]();
  }

  /** The next message that is not a heartbeat. */
  async next(): Promise<Message> {
    for (;;) {
      const result = await withTimeout(this.iterator.next(), READ_TIMEOUT_MS);
      if (result.done) throw new Error("the subscription ended");
      if (result.value.message.case !== "heartbeat") return result.value.message;
    }
  }

  /** The next message, which must be of `kind`. */
  async expectNext<K extends Kind>(kind: K): Promise<Payload<K>> {
    const message = await this.next();
    if (message.case !== kind) throw new Error(`expected a ${kind}, got ${JSON.stringify(message.case)}`);
    return message.value as unknown as Payload<K>;
  }

  close(): void {
    this.abort.abort();
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no message within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
