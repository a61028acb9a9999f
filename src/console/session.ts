/**
 * What every page of the console shares: the server's settings, the client (the
 * project's own client library, browser entry) and the API key its user typed, kept in
 * memory only: the page embeds no secret and stores none.
 */
import { createStreamClient, ErrorCode, StreamError, type StreamClient } from "../client/browser.js";

export interface Settings {
  apiKeys: boolean;
  metrics: boolean;
}

/** The server's root: the console is at `<root>/console/`, so a proxy may mount the whole server under a prefix. */
export const serverRoot = new URL("../", location.href);

export class Session {
  client: StreamClient;
  private apiKey: string | undefined;
  private readonly keyListeners = new Set<() => void>();

  constructor(readonly settings: Settings) {
    this.client = this.createClient();
  }

  /**
   * Whether the server's data may be asked for: keys are not configured, or one was typed.
   * With keys every unary call needs one (reads too); the page then asks for it rather
   * than making calls bound to be refused.
   */
  get canWrite(): boolean {
    return !this.settings.apiKeys || this.apiKey !== undefined;
  }

  get hasKey(): boolean {
    return this.apiKey !== undefined;
  }

  /** Uses another key (or none) from now on: a new client, and every page reopens its views with it. */
  useKey(key: string | undefined): void {
    this.apiKey = key === "" ? undefined : key;
    this.client.close();
    this.client = this.createClient();
    for (const listener of this.keyListeners) listener();
  }

  onKeyChange(listener: () => void): () => void {
    this.keyListeners.add(listener);
    return () => this.keyListeners.delete(listener);
  }

  /** A GET of one of the server's own JSON or text resources, with the key when there is one. */
  async fetchText(path: string): Promise<string> {
    const response = await fetch(new URL(path, serverRoot), { headers: this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}, cache: "no-store" });
    const text = await response.text();
    if (!response.ok) {
      let message = text.trim();
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? message;
      } catch {
        // Plain text: the message as it is.
      }
      throw new StreamError(response.status === 401 ? ErrorCode.Unauthenticated : ErrorCode.Unavailable, `${response.status}: ${message}`);
    }
    return text;
  }

  /**
   * gRPC-Web rather than Connect: it reports a refused call (a conflict, a missing key) in
   * its trailers of a 200 response, where Connect answers 4xx, which every browser logs
   * in its console as a failed resource even though the page handles the error.
   */
  private createClient(): StreamClient {
    return createStreamClient({ baseUrl: serverRoot.href.replace(/\/$/, ""), transport: "grpc-web", apiKey: this.apiKey });
  }
}

/** An error as the page says it: the code and the server's message. */
export function describeError(error: unknown): string {
  const streamError = error instanceof StreamError ? error : undefined;
  if (streamError?.code === ErrorCode.Unauthenticated) return `${streamError.message} (enter an API key above)`;
  return streamError ? `${streamError.code}: ${streamError.message}` : String(error);
}

export async function loadSettings(): Promise<Settings> {
  const response = await fetch(new URL("console/settings.json", serverRoot), { cache: "no-store" });
  if (!response.ok) throw new Error(`settings: ${response.status}`);
  return (await response.json()) as Settings;
}
