import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ReadAccess } from "../access/read-access.js";

export const CONSOLE_PATH = "/console";

/** What of a Node request (HTTP/1.1 or HTTP/2) the console reads and writes. */
interface ConsoleRequest {
  readonly method?: string;
  readonly url?: string;
  readonly headers: Record<string, string | string[] | undefined>;
}
interface ConsoleResponse {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(body: string | Buffer): unknown;
}

/** What the page asks the server about itself, none of it secret. */
export interface ConsoleSettings {
  /**
   * Whether API keys are configured: then every unary call (lists and reads included) and
   * every TriggerService call needs one, so the page asks for it before it lists anything.
   */
  apiKeys: boolean;
  /** Whether `/metrics` is served on this port, where the page can read it. */
  metrics: boolean;
}

export interface ConsoleRouteOptions {
  settings: ConsoleSettings;
  /** Subscriptions open here on a group. */
  subscriberCount(streamName: string, groupId: string): number;
  /** Who may read counts of a group: the same rule as Subscribe. */
  readAccess: ReadAccess;
  /** Where the built page is; by default dist/console, found from this module in dist/ or in src/. */
  directory?: string;
}

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
  cacheControl: string;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/**
 * Every console response carries these. The page loads only its own files and talks
 * only to this origin (no CDN, no inline script), may not be framed (clickjacking of
 * its write buttons), and sends no Referer, which could carry a stream or group name.
 */
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};

/**
 * The web console at `/console/`: the page esbuild built into dist/console (read once,
 * at construction), `settings.json` (what the page needs to know of this server) and
 * `subscribers.json` (a group's subscriber count). It adds no way in: the page calls the
 * same RPCs as any client, with the API key its user types, and the counts obey the
 * rule Subscribe obeys. Returns false, leaving the request alone, for other paths.
 */
export function consoleRoute(options: ConsoleRouteOptions): (req: ConsoleRequest, res: ConsoleResponse) => boolean {
  const assets = loadAssets(options.directory ?? builtConsoleDirectory());
  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://console");
    const path = url.pathname;
    if (path !== CONSOLE_PATH && !path.startsWith(`${CONSOLE_PATH}/`)) return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8", ...SECURITY_HEADERS });
      res.end("the console is read with GET\n");
      return true;
    }
    // The page names its files relatively, so it must be at /console/, not /console.
    if (path === CONSOLE_PATH) {
      res.writeHead(308, { location: `${CONSOLE_PATH}/${url.search}`, "cache-control": "no-cache", ...SECURITY_HEADERS });
      res.end("");
      return true;
    }
    const name = path.slice(CONSOLE_PATH.length + 1) || "index.html";
    if (name === "settings.json") return json(req, res, 200, options.settings);
    if (name === "subscribers.json") {
      if (!options.readAccess.allows(header(req, "authorization"))) {
        return json(req, res, 401, { code: "unauthenticated", message: "a valid API key is required to read: send Authorization: Bearer <key>" });
      }
      const stream = url.searchParams.get("stream");
      const group = url.searchParams.get("group");
      if (!stream || !group) return json(req, res, 400, { code: "invalid_argument", message: "stream and group are required query parameters" });
      return json(req, res, 200, { subscribers: options.subscriberCount(stream, group) });
    }
    if (assets === undefined) {
      res.writeHead(503, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", ...SECURITY_HEADERS });
      res.end("the console was not built: run `npm run build`\n");
      return true;
    }
    const asset = assets.get(name);
    if (!asset) {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8", ...SECURITY_HEADERS });
      res.end(`no console file ${name}\n`);
      return true;
    }
    const headers = { "content-type": asset.type, "cache-control": asset.cacheControl, etag: asset.etag, ...SECURITY_HEADERS };
    if (header(req, "if-none-match") === asset.etag) {
      res.writeHead(304, headers);
      res.end("");
      return true;
    }
    res.writeHead(200, { ...headers, "content-length": String(asset.body.length) });
    res.end(req.method === "HEAD" ? "" : asset.body);
    return true;
  };
}

function header(req: ConsoleRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function json(req: ConsoleRequest, res: ConsoleResponse, status: number, body: object): true {
  // Counts and settings change: a cached answer would show a stale server.
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", ...SECURITY_HEADERS });
  res.end(req.method === "HEAD" ? "" : JSON.stringify(body));
  return true;
}

/**
 * The files of the built console. A name with a content hash (`main-4F2K….js`) never
 * changes, so browsers keep it for a year; the page and the icon, whose names stay,
 * are revalidated on every load (304 while unchanged).
 */
function loadAssets(directory: string | undefined): Map<string, Asset> | undefined {
  if (directory === undefined || !existsSync(join(directory, "index.html"))) return undefined;
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(directory)) {
    const type = TYPES[extname(name)];
    if (type === undefined) continue;
    const body = readFileSync(join(directory, name));
    const hashed = /-[A-Z0-9]{8}\.(js|css)$/.test(name);
    assets.set(name, {
      body,
      type,
      etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`,
      cacheControl: hashed ? "public, max-age=31536000, immutable" : "no-cache",
    });
  }
  return assets;
}

/** dist/console: two folders up from this module once built (dist/src/server), or dist/ beside src/ under tsx and vitest. */
function builtConsoleDirectory(): string | undefined {
  for (const relative of ["../../console", "../../dist/console"]) {
    const directory = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(join(directory, "index.html"))) return directory;
  }
  return undefined;
}
