import { createContextKey, createContextValues, type ContextValues } from "@connectrpc/connect";
import { peerAddress, type Peer } from "../access/handshake.js";

/** The socket a Connect call came on, for the log records of the call. */
const PEER_SOCKET = createContextKey<Peer | undefined>(undefined, { description: "the socket of the call" });

/**
 * The values Connect hands every call: its socket. The address is read only when a
 * record needs it, which most calls never do.
 */
export function callContextValues(req: { socket?: Peer | null }): ContextValues {
  return createContextValues().set(PEER_SOCKET, req.socket ?? undefined);
}

/** "host:port" of the caller, or "" when unknown. */
export function callPeer(values: ContextValues): string {
  return peerAddress(values.get(PEER_SOCKET));
}
