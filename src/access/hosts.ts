import { ErrorCode, StreamError } from "../core/errors.js";

/*
 * DNS rebinding: a page on a name its author controls (rebind.attacker.test) has that
 * name resolve to 127.0.0.1 after loading. To the browser the page and the server are
 * then one origin, so the origin checks and CORS never apply, and the page can call
 * everything a local program can. What the browser cannot change is the Host header:
 * it still names the page's host. Answering only for the names this server is meant to
 * be reached by closes that door; a name an attacker controls is never one of them.
 */

/** A host name or address as it may appear in Host, with an optional port; nothing else (no user info, no path). */
const HOST_HEADER = /^(\[[0-9A-Fa-f:.]+\]|[^[\]:/@?#%\\\s]+)(:\d{0,5})?$/;
/** An entry of the allow-list: a host name or address, IPv6 with or without brackets, no port. */
const HOST_ENTRY = /^(\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f]*:[0-9A-Fa-f:.]+|[^[\]:/@?#%\\\s]+)$/;

/** Most distinct allowed Host values remembered (see HostAllowList.seen). */
const SEEN_LIMIT = 64;

/** The addresses that mean "every interface": listening on one names no host. */
const WILDCARDS = new Set(["0.0.0.0", "[::]"]);

/**
 * The host names requests may carry in `Host` (HTTP/1.1) or `:authority` (HTTP/2):
 * always the loopback names and addresses (localhost, any 127.x.y.z, [::1]), the
 * address the server listens on unless it is a wildcard, and the configured names;
 * `"*"` among those allows any. Ports are ignored: the check is about names.
 */
export class HostAllowList {
  private readonly names = new Set<string>();
  private readonly any: boolean;
  /**
   * Host values already allowed, exactly as received: every request carries one, and
   * clients use a handful, so the parse (a URL per request) runs once per value. Only
   * allowed values are kept, and at most SEEN_LIMIT, so refused or varied values
   * cannot grow it.
   */
  private readonly seen = new Set<string>();

  /** `configured` must have passed `hostsProblem()`; the server's options check it. */
  constructor(configured: readonly string[], listenHost: string) {
    this.any = configured.includes("*");
    for (const entry of configured) {
      const name = nameOfEntry(entry);
      if (name !== undefined) this.names.add(name);
    }
    const listening = nameOfEntry(listenHost);
    if (listening !== undefined && !WILDCARDS.has(listening)) this.names.add(listening);
  }

  /**
   * Whether a request with this Host may be served. A request without one (HTTP/1.0)
   * does not come from a browser, which always sends it, and DNS rebinding needs a
   * browser: it is served as before.
   */
  allows(host: string | undefined): boolean {
    if (host === undefined || host === "" || this.any || this.seen.has(host)) return true;
    const name = nameOfHost(host);
    const allowed = name !== undefined && (isLoopback(name) || this.names.has(name));
    if (allowed && this.seen.size < SEEN_LIMIT) this.seen.add(host);
    return allowed;
  }

  /** The body of the 421 answer: which host, and which option would allow it. */
  refusal(host: string): string {
    const shown = nameOfHost(host) ?? host.slice(0, 256);
    return (
      `misdirected request: this server does not answer for host ${JSON.stringify(shown)}; ` +
      "if it should, add that name to allowed_hosts (server option allowedHosts)\n"
    );
  }
}

/** What is wrong with an allow-list entry, or undefined when it is a host name, an address or "*". */
export function hostsProblem(entry: string): string | undefined {
  if (entry === "*") return undefined;
  if (entry === "") return "is empty; name a host such as stream.example.com, or \"*\" for any";
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(entry)) return `${JSON.stringify(entry)} is a URL; name only its host, such as stream.example.com`;
  if (/^[^[\]:]+:\d*$/.test(entry) || /^\[.*\]:\d*$/.test(entry)) {
    return `${JSON.stringify(entry)} has a port; name only the host (ports are not compared)`;
  }
  if (!HOST_ENTRY.test(entry) || nameOfEntry(entry) === undefined) {
    return `${JSON.stringify(entry)} is not a host name or address`;
  }
  return undefined;
}

/** Checks the `allowedHosts` option; a bad entry stops the start, named by its position. */
export function checkAllowedHosts(hosts: readonly string[]): readonly string[] {
  hosts.forEach((entry, index) => {
    const problem = hostsProblem(entry);
    if (problem !== undefined) throw new StreamError(ErrorCode.InvalidArgument, `allowedHosts[${index}]: ${problem}`);
  });
  return hosts;
}

/** The note to print when the server listens on every interface but answers only for loopback names. */
export function hostsNotice(listenHost: string, allowedHosts: readonly string[]): string | undefined {
  const listening = nameOfEntry(listenHost);
  if (listening === undefined || !WILDCARDS.has(listening) || allowedHosts.length > 0) return undefined;
  return (
    `listening on ${listenHost}, but answering only requests for localhost and loopback addresses (421 for others, ` +
    'against DNS rebinding): name the hosts clients use in allowed_hosts, or "*"'
  );
}

/** The canonical host name in a Host header value, without its port; undefined if it is not one. */
function nameOfHost(host: string): string | undefined {
  const match = HOST_HEADER.exec(host);
  return match ? canonicalName(match[1]) : undefined;
}

/** The canonical name of an allow-list entry or a listening address, where IPv6 may come without brackets. */
function nameOfEntry(entry: string): string | undefined {
  return canonicalName(entry.includes(":") && !entry.startsWith("[") ? `[${entry}]` : entry);
}

/**
 * A host as a browser writes it: lower case, IDNs in punycode, IPv4 in dotted decimal,
 * IPv6 compressed in brackets; one trailing dot dropped, as it names the same host.
 * The input has been checked for characters that would make the URL parser read
 * anything but a host.
 */
function canonicalName(host: string): string | undefined {
  if (host === "" || /[/@?#%\\\s]/.test(host)) return undefined;
  try {
    const name = new URL(`http://${host}/`).hostname;
    return name.endsWith(".") ? name.slice(0, -1) : name;
  } catch {
    return undefined;
  }
}

/**
 * Whether a host name or address names this machine: localhost, any 127.x.y.z, or ::1
 * (bare, as a listening address, or bracketed, as in a URL or Host header). Callers
 * pass names the URL class has canonicalised, so every IPv4 spelling is dotted decimal.
 */
export function isLoopback(name: string): boolean {
  return name === "localhost" || name === "::1" || name === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(name);
}
