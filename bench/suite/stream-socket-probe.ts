import { streamSocketTransport } from "../load/transports/stream-socket-transport.js";

const PROBE_TIMEOUT_MS = 5000;

/**
 * Whether the server's stream socket works: a WebSocket client joins a group and
 * receives a change written through Set. Returns why not, or undefined when it works.
 * The stream-socket runs depend on it, since the bridge may not be built yet.
 */
export async function streamSocketUnavailable(url: string): Promise<string | undefined> {
  let received = false;
  const subscriber = streamSocketTransport.subscribe(url, "probe", { onChange: () => void (received = true), onLost: () => undefined });
  const writer = await streamSocketTransport.openWriter(url);
  const deadline = Date.now() + PROBE_TIMEOUT_MS;
  try {
    const joined = await Promise.race([subscriber.joined.then(() => true), sleep(PROBE_TIMEOUT_MS).then(() => false)]).catch(() => false);
    if (!joined) return "the stream socket did not answer a join with a sync";
    await writer.write("probe", 0);
    while (!received && Date.now() < deadline) await sleep(20);
    return received ? undefined : "the stream socket did not deliver a change written with Set";
  } catch (error) {
    return `the stream socket failed: ${(error as Error).message}`;
  } finally {
    subscriber.close();
    writer.close();
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
