import { isLoopback } from "../access/hosts.js";
import { ErrorCode, StreamError } from "../core/errors.js";

/** How the option is named to the people who set it: in code and in the config file. */
const OPTION = "allowedFunctionHosts (allowed_function_hosts in the config file)";

const LOOPBACK_NAMES = "localhost, 127.x.x.x and [::1]";

interface HostRule {
  /** Canonical host name as the URL class writes it (lower case, IPv6 in brackets). */
  hostname: string;
  /** The port it pins, or undefined for any port. */
  port: number | undefined;
}

/**
 * The hosts a remote function may be registered at. The server POSTs every trigger's
 * payload to a registered URL, so whoever may register functions may otherwise make it
 * reach any address it can: without API keys that is anyone who can reach the port,
 * hence the loopback-only default there; with keys, the key holders, who are trusted
 * with any host unless the operator pins them.
 */
export class FunctionHosts {
  private constructor(
    /** undefined: any host. */
    private readonly rules: readonly HostRule[] | "loopback" | undefined,
    private readonly description: string,
  ) {}

  /** Any host. */
  static readonly any = new FunctionHosts(undefined, "any host");

  /** localhost, 127.0.0.0/8 and ::1, on any port. */
  static readonly loopback = new FunctionHosts("loopback", `${LOOPBACK_NAMES} only, the default without API keys`);

  /**
   * The option as given: undefined picks the default (any host with API keys, loopback
   * without); a list holds host names or addresses, each optionally with `:port`, or
   * "*" for any host. Throws INVALID_ARGUMENT, naming the option, for a malformed entry.
   */
  static resolve(list: readonly string[] | undefined, apiKeysConfigured: boolean): FunctionHosts {
    if (list === undefined) return apiKeysConfigured ? FunctionHosts.any : FunctionHosts.loopback;
    if (list.includes("*")) return FunctionHosts.any;
    return new FunctionHosts(list.map(parseRule), list.join(", ") || "none");
  }

  /** What is allowed, in words (for the start-up line). */
  toString(): string {
    return this.description;
  }

  /** Throws PERMISSION_DENIED, naming the option, unless `url` (an absolute http(s) URL) is on a permitted host. */
  check(url: string): void {
    if (this.rules === undefined) return;
    const parsed = new URL(url);
    const port = Number(parsed.port || (parsed.protocol === "https:" ? 443 : 80));
    const allowed =
      this.rules === "loopback"
        ? isLoopback(parsed.hostname)
        : this.rules.some((rule) => rule.hostname === parsed.hostname && (rule.port === undefined || rule.port === port));
    if (!allowed) {
      throw new StreamError(
        ErrorCode.PermissionDenied,
        `url "${url}" is on host ${parsed.host}, which ${OPTION} does not allow (allowed: ${this.description})`,
      );
    }
  }
}

/** "name", "name:port", "1.2.3.4:port", "[::1]:port"; canonicalised as the URL class would write them. */
function parseRule(entry: string): HostRule {
  let parsed: URL | undefined;
  try {
    parsed = /[/?#@\s]/.test(entry) || entry === "" ? undefined : new URL(`http://${entry}`);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || parsed.pathname !== "/") {
    throw new StreamError(ErrorCode.InvalidArgument, `${OPTION}: "${entry}" is not a host name, an address or host:port (nor "*")`);
  }
  // The URL class drops a port equal to the scheme's default, so an explicit ":80" is read from the entry itself.
  const explicitPort = /:(\d+)$/.exec(entry);
  return { hostname: parsed.hostname, port: explicitPort ? Number(explicitPort[1]) : undefined };
}
