import type { JsonObject } from "../core/json.js";

/** Where a connection comes from, as Node.js reports it. */
export interface Peer {
  remoteAddress?: string;
  remotePort?: number;
}

export interface HandshakeInfo {
  /** Header name/value pairs in arrival order; names in any case. */
  headers: Iterable<readonly [string, string]>;
  /** The request target: a path with an optional query, or an absolute URL. */
  url: string;
  peer: Peer | undefined;
}

/** The parts of a Node.js HTTP/1.1 or HTTP/2 request that authentication looks at. */
export interface NodeRequestLike {
  rawHeaders: string[];
  url?: string;
  socket: Peer | null;
}

/** Reads a Connect call's or a WebSocket upgrade's Node.js request; HTTP/2 pseudo-headers are left out. */
export function handshakeFromNode(request: NodeRequestLike): HandshakeInfo {
  const headers: Array<[string, string]> = [];
  for (let i = 0; i + 1 < request.rawHeaders.length; i += 2) {
    const name = request.rawHeaders[i];
    if (!name.startsWith(":")) headers.push([name, request.rawHeaders[i + 1]]);
  }
  return { headers, url: request.url ?? "/", peer: request.socket ?? undefined };
}

/**
 * The input of the `auth_function`, shaped as in the reference:
 * `{headers, path, query_params, addr}`. Header names are lower-case, a repeated
 * name keeps its last value, and values with anything but visible ASCII are left
 * out. Query values are split on `&` and the first `=`, and are not percent-decoded.
 */
export function authPayload(info: HandshakeInfo): JsonObject {
  const headers = emptyObject();
  for (const [name, value] of info.headers) {
    if (/^[\t\x20-\x7e]*$/.test(value)) headers[name.toLowerCase()] = value;
  }
  const target = info.url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, "");
  const [pathAndQuery] = target.split("#", 1);
  const queryStart = pathAndQuery.indexOf("?");
  const path = (queryStart < 0 ? pathAndQuery : pathAndQuery.slice(0, queryStart)) || "/";
  return {
    headers,
    path,
    query_params: queryStart < 0 ? {} : queryParams(pathAndQuery.slice(queryStart + 1)),
    addr: peerAddress(info.peer),
  };
}

function queryParams(query: string): JsonObject {
  const params = emptyObject() as Record<string, string[]>;
  for (const part of query.split("&")) {
    const equals = part.indexOf("=");
    const key = equals < 0 ? part : part.slice(0, equals);
    if (key === "") continue;
    (params[key] ??= []).push(equals < 0 ? "" : part.slice(equals + 1));
  }
  return params;
}

/** Without a prototype, so that a key such as "__proto__" from the client is just a key. */
function emptyObject(): JsonObject {
  return Object.create(null) as JsonObject;
}

/** "ip:port", with an IPv6 address in brackets as in a URL; empty when unknown. */
export function peerAddress(peer: Peer | undefined): string {
  if (!peer?.remoteAddress) return "";
  const host = peer.remoteAddress.includes(":") ? `[${peer.remoteAddress}]` : peer.remoteAddress;
  return peer.remotePort === undefined ? host : `${host}:${peer.remotePort}`;
}
