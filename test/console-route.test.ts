/**
 * The web console's route: served at /console/ on a loopback server by default, off with
 * `console: false` and by default on other addresses, with content types, caching and
 * security headers that suit a public page, and nothing secret in what it serves.
 */
import { readdirSync } from "node:fs";
import http2 from "node:http2";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStreamServer, type StreamServer } from "../src/index.js";
import { resolveOptions } from "../src/server/options.js";
import { silentLog } from "../src/core/log.js";

const KEY = "console-route-secret-key-42";
const servers: StreamServer[] = [];

async function start(options: Parameters<typeof createStreamServer>[0] = {}): Promise<StreamServer> {
  const server = createStreamServer({ port: 0, shutdownGraceMs: 200, log: silentLog, ...options });
  await server.start();
  servers.push(server);
  return server;
}

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

describe("the console route", () => {
  let open: StreamServer;
  let keyed: StreamServer;
  beforeAll(async () => {
    open = await start();
    keyed = await start({ apiKeys: [KEY] });
  });

  it("is on by default on loopback: /console redirects to /console/, which serves the page", async () => {
    const redirect = await fetch(`${open.url}/console?x=1`, { redirect: "manual" });
    expect(redirect.status).toBe(308);
    expect(redirect.headers.get("location")).toBe("/console/?x=1");
    const page = await fetch(`${open.url}/console/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.headers.get("cache-control")).toBe("no-cache");
    const html = await page.text();
    expect(html).toMatch(/<script type="module" src="main-[A-Z0-9]{8}\.js"><\/script>/);
    expect(html).not.toMatch(/https?:\/\//);
  });

  it("serves every built file with its content type; hashed names are cached for good, the others revalidated", async () => {
    const html = await (await fetch(`${open.url}/console/`)).text();
    const script = /src="(main-[A-Z0-9]{8}\.js)"/.exec(html)![1];
    const styles = /href="(console-[A-Z0-9]{8}\.css)"/.exec(html)![1];
    const js = await fetch(`${open.url}/console/${script}`);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(js.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect((await js.text()).length).toBeGreaterThan(1000);
    const css = await fetch(`${open.url}/console/${styles}`);
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
    expect(css.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    const icon = await fetch(`${open.url}/console/icon.svg`);
    expect(icon.headers.get("content-type")).toBe("image/svg+xml");
    expect(icon.headers.get("cache-control")).toBe("no-cache");
    const etag = icon.headers.get("etag")!;
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = await fetch(`${open.url}/console/icon.svg`, { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
    for (const response of [js, css, icon]) {
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      expect(response.headers.get("content-security-policy")).toContain("default-src 'self'");
      expect(response.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    }
    const head = await fetch(`${open.url}/console/${script}`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });

  it("serves over HTTP/2 as well", async () => {
    const session = http2.connect(open.url);
    try {
      const { status, type } = await new Promise<{ status: number; type: string }>((resolve, reject) => {
        const stream = session.request({ ":path": "/console/", ":method": "GET" });
        stream.on("response", (headers) => resolve({ status: headers[":status"] as number, type: headers["content-type"] as string }));
        stream.on("error", reject);
        stream.resume();
      });
      expect(status).toBe(200);
      expect(type).toBe("text/html; charset=utf-8");
    } finally {
      session.close();
    }
  });

  it("answers an unknown file with 404, another method with 405, and leaves other paths alone", async () => {
    const missing = await fetch(`${open.url}/console/nothing.js`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toBe("no console file nothing.js\n");
    const post = await fetch(`${open.url}/console/`, { method: "POST", body: "x" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    const traversal = await fetch(`${open.url}/console/..%2F..%2Fpackage.json`);
    expect(traversal.status).toBe(404);
    const elsewhere = await fetch(`${open.url}/consoles`);
    expect(elsewhere.status).toBe(404);
    expect(await elsewhere.text()).toContain("/console/");
  });

  it("tells the page what it needs, uncached: whether keys are set and where metrics are", async () => {
    const settings = await fetch(`${open.url}/console/settings.json`);
    expect(settings.headers.get("cache-control")).toBe("no-store");
    expect(await settings.json()).toEqual({ apiKeys: false, metrics: true });
    expect(await (await fetch(`${keyed.url}/console/settings.json`)).json()).toEqual({ apiKeys: true, metrics: true });
  });

  it("counts a group's subscribers under the rule Subscribe obeys: with keys, only for a key", async () => {
    const counts = await fetch(`${open.url}/console/subscribers.json?stream=chat&group=room`);
    expect(await counts.json()).toEqual({ subscribers: 0 });
    const refused = await fetch(`${keyed.url}/console/subscribers.json?stream=chat&group=room`);
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { code: string }).code).toBe("unauthenticated");
    const wrong = await fetch(`${keyed.url}/console/subscribers.json?stream=chat&group=room`, { headers: { authorization: "Bearer not-the-key-at-all-0000" } });
    expect(wrong.status).toBe(401);
    const allowed = await fetch(`${keyed.url}/console/subscribers.json?stream=chat&group=room`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(await allowed.json()).toEqual({ subscribers: 0 });
    const bad = await fetch(`${open.url}/console/subscribers.json?stream=chat`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { code: string }).code).toBe("invalid_argument");
  });

  it("embeds no secret: no API key, no machine path, no address in any served file", async () => {
    const dir = fileURLToPath(new URL("../dist/console/", import.meta.url));
    const names = readdirSync(dir);
    expect(names.some((name) => name.endsWith(".js"))).toBe(true);
    for (const name of [...names, "settings.json"]) {
      const body = await (await fetch(`${keyed.url}/console/${name}`)).text();
      expect(body, name).not.toContain(KEY);
      expect(body, name).not.toContain(process.cwd());
      expect(body, name).not.toContain(String(keyed.port));
      expect(body, name).not.toMatch(/\/(home|root|work|tmp|Users)\//);
    }
  });
});

describe("turning the console off", () => {
  it("console: false serves no /console", async () => {
    const server = await start({ console: false });
    expect((await fetch(`${server.url}/console/`)).status).toBe(404);
    expect((await fetch(`${server.url}/console/settings.json`)).status).toBe(404);
    expect(server.effectiveConfig().console).toBe(false);
  });

  it("is off by default on an address other than loopback, and on when asked for", () => {
    expect(resolveOptions({ host: "0.0.0.0", log: silentLog }).console).toBe(false);
    expect(resolveOptions({ host: "0.0.0.0", console: true, log: silentLog }).console).toBe(true);
    expect(resolveOptions({ host: "localhost", log: silentLog }).console).toBe(true);
    expect(resolveOptions({ host: "::1", log: silentLog }).console).toBe(true);
    expect(resolveOptions({ log: silentLog }).console).toBe(true);
  });
});
