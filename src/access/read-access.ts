import type { ApiKeys } from "./api-keys.js";

export interface ReadAccessOptions {
  /** The operator opened reads to anyone who reaches the port (`publicReads`). */
  publicReads: boolean;
  /** An `auth_function` is configured: it decides who reads, and refuses on its own. */
  authFunction: boolean;
}

/** What a refused reader is told, on every transport. */
export const READ_KEY_REQUIRED = "a valid API key is required to read: send Authorization: Bearer <key>";

/**
 * Who may read (Subscribe, the stream socket, a worker's reads and stream triggers).
 * Keys that guarded only writes left every item readable by anyone who reached the
 * port, and a stream trigger delivered every later write; so with keys configured a
 * reader needs one too, unless an auth function vets readers or the operator made
 * reads public. Without keys nothing is checked, as for writes.
 */
export class ReadAccess {
  constructor(
    private readonly keys: ApiKeys,
    private readonly options: ReadAccessOptions,
  ) {}

  /** Whether a connection presenting this `Authorization` value may read (the auth function, if any, still runs). */
  allows(authorization: string | null | undefined): boolean {
    if (!this.keys.configured || this.options.publicReads || this.options.authFunction) return true;
    return this.keys.accepts(authorization);
  }
}
