import { createHash, timingSafeEqual } from "node:crypto";
import { ErrorCode, StreamError } from "../core/errors.js";

/**
 * The shortest key accepted: 16 characters, about 100 bits when drawn at random from
 * printable ASCII, beyond guessing over the network; a word or a short PIN is not.
 */
export const MIN_API_KEY_LENGTH = 16;

/**
 * What makes a key unusable, without quoting it (a message may end up in logs); undefined
 * when it is fine. A key is presented as `Authorization: Bearer <key>`: whitespace would
 * split it there, a control character cannot travel in a header at all, and a character
 * beyond ASCII reaches the server as something else depending on the client, so such a
 * key would be accepted at start and never match.
 */
export function apiKeyProblem(key: string): string | undefined {
  if (/\s/u.test(key)) return "contains whitespace, which cannot be presented in an Authorization header";
  if (/\p{Cc}/u.test(key)) return "contains a control character, which cannot be presented in an Authorization header";
  if (/[^\x21-\x7e]/.test(key)) return "contains a character beyond printable ASCII, which HTTP clients do not send unchanged";
  if (key.length < MIN_API_KEY_LENGTH) return `has ${key.length} characters; a key needs at least ${MIN_API_KEY_LENGTH}`;
  return undefined;
}

/** Checks the `apiKeys` option; a bad key stops the start, named by its position and never shown. */
export function checkApiKeys(keys: readonly string[]): readonly string[] {
  keys.forEach((key, index) => {
    const problem = apiKeyProblem(key);
    if (problem !== undefined) throw new StreamError(ErrorCode.InvalidArgument, `apiKeys[${index}] ${problem}`);
  });
  return keys;
}

/**
 * The API keys that writes, administration and (see ReadAccess) reads need, presented as
 * `Authorization: Bearer <key>`. Both transports check them here: Connect's unary calls
 * through the interceptor, Subscribe and WebSocket connections through ReadAccess, and the
 * worker connection when it asks for privilege.
 */
export class ApiKeys {
  /**
   * Digests of the configured keys, computed once. Comparing digests, all of the same
   * length, lets the comparison take the same time whatever key is presented.
   */
  private readonly digests: readonly Buffer[];

  constructor(keys: readonly string[]) {
    this.digests = keys.map(sha256);
  }

  /** Whether any key is configured; without one, nothing is checked. */
  get configured(): boolean {
    return this.digests.length > 0;
  }

  /** Whether an `Authorization` header value is `Bearer <key>` with one of the keys. */
  accepts(authorization: string | null | undefined): boolean {
    const match = /^Bearer +(\S+) *$/i.exec(authorization ?? "");
    return match !== null && this.isKnown(match[1]);
  }

  private isKnown(key: string): boolean {
    const digest = sha256(key);
    let known = false;
    // Every digest is compared, even after a match, so the time does not say which key matched.
    for (const candidate of this.digests) known = timingSafeEqual(candidate, digest) || known;
    return known;
  }
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
