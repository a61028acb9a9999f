import { createHash, timingSafeEqual } from "node:crypto";

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
