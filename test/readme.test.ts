import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { connect } from "node:net";
import { join } from "node:path";
import { WebSocket } from "ws";
import { parse as parseYaml } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LISTENING, PROJECT_ROOT, spawnServer, type ServerProcess } from "./support/process.js";
import { readmeBlocks, type ReadmeBlock } from "./support/readme-blocks.js";
import { freePort, runScript, startCommand, type RunningCommand } from "./support/shell.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./support/redis.js";
import { openSocket, wsUrl } from "./support/ws-client.js";

/*
 * Every code block of the README is run here, or compared with what runs, so that the README
 * cannot drift from the service again. A block names its test in an HTML comment on the line
 * before its fence (`<!-- test: tour-write -->`); a block without one fails the first test.
 * Commands run as written, with three changes a shared machine needs: the README's ports (3112,
 * 3113, 9000) become free ones, `npm start` gets a data directory of the test's own instead of
 * ./data, and a Redis key prefix of its own.
 */
const README = readFileSync(join(PROJECT_ROOT, "README.md"), "utf8");
const BLOCKS = readmeBlocks(README);
const RUN_HERE = new Set([
  "run-it",
  "library",
  "tour-subscribe",
  "tour-write",
  "reflection-list",
  "tls-cert",
  "tls-start",
  "tls-call",
  "audit-function",
  "audit-register",
  "config-file",
  "config-start",
  "config-write",
  "presence-excerpt",
  "presence-run",
  "presence-output",
  "socket-client-messages",
  "socket-server-message",
  "worker-node",
  "worker-browser",
  "client-node",
  "client-browser",
  "two-instances",
  "kubernetes-probes",
  "metrics-curl",
  "metrics-scrape-config",
  "cli-commands",
  "cli-watch",
]);

const scratch = mkdtempSync(join(tmpdir(), "iii-stream-readme-"));
/** Inside the package, so that a snippet's `import ... from "iii-stream"` finds the package itself. */
const inPackage = join(PROJECT_ROOT, ".vitest-tmp", `readme-${process.pid}`);
const running: RunningCommand[] = [];
const servers: ServerProcess[] = [];

beforeAll(() => mkdirSync(inPackage, { recursive: true }));
afterAll(async () => {
  await Promise.all(running.map((command) => command.stop("SIGKILL")));
  for (const server of servers) server.child.kill("SIGKILL");
  rmSync(scratch, { recursive: true, force: true });
  rmSync(inPackage, { recursive: true, force: true });
});

function block(id: string): ReadmeBlock {
  const found = BLOCKS.filter((b) => b.id === id);
  if (found.length !== 1) throw new Error(`README.md has ${found.length} blocks marked ${id}`);
  return found[0];
}

/**
 * The README's ports as the free ones this test uses; `npm start`, which serves on 3112 and ./data
 * unless told otherwise, on the free port and a data directory of the test's own.
 */
function localize(text: string, ports: Record<number, number>): string {
  let out = text;
  for (const [from, to] of Object.entries(ports)) out = out.replace(new RegExp(`\\b${from}\\b`, "g"), String(to));
  return out.replace(/^npm start(?: --)?(.*)$/gm, (_, rest: string) => {
    const port = ports[3112] !== undefined && !rest.includes("--port") ? ` --port ${ports[3112]}` : "";
    const dataDir = rest.includes("--adapter") ? "" : ` --data-dir ${join(scratch, `data-${Math.random().toString(36).slice(2)}`)}`;
    return `npm start --${port}${dataDir}${rest}`;
  });
}

function start(script: string, options: Parameters<typeof startCommand>[1] = {}): RunningCommand {
  const command = startCommand(script, options);
  running.push(command);
  return command;
}

async function startServer(args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  const server = await spawnServer(["--port", "0", "--adapter", "memory", ...args], env);
  servers.push(server);
  return server;
}

/** The objects of a stream of pretty-printed JSON documents, as `buf curl` prints them. */
function jsonDocuments(text: string): Record<string, unknown>[] {
  return text
    .split(/\n(?=\{)/)
    .map((doc) => doc.trim())
    .filter((doc) => doc.startsWith("{") && doc.endsWith("}"))
    .map((doc) => JSON.parse(doc) as Record<string, unknown>);
}

async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** A unary call in Connect's JSON form, as curl makes it. */
async function call(url: string, method: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${url}/iii.stream.v1.StreamService/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = (await response.json()) as Record<string, unknown>;
  if (!response.ok) throw new Error(`${method}: ${response.status} ${JSON.stringify(answer)}`);
  return answer;
}

async function listValues(url: string, streamName: string, groupId: string): Promise<Map<string, unknown>> {
  const { items = [] } = (await call(url, "List", { streamName, groupId })) as { items?: { itemId: string; data: unknown }[] };
  return new Map(items.map((item) => [item.itemId, item.data]));
}

describe("README.md", () => {
  it("marks every code block with the test that runs it", () => {
    const unmarked = BLOCKS.filter((b) => !b.id || !RUN_HERE.has(b.id)).map(
      (b) => `line ${b.line} (${b.lang || "plain"}): ${b.id ? `${b.id} is run by no test here` : "no <!-- test: ID --> before it"}`,
    );
    expect(unmarked).toEqual([]);
    const ids = BLOCKS.map((b) => b.id);
    expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
  });

  it("Run it: every command is a script of the package, and npm start and npm run dev serve", { timeout: 90_000 }, async () => {
    const scripts = (JSON.parse(readFileSync(join(PROJECT_ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
    const commands = block("run-it")
      .text.split("\n")
      .map((line) => line.replace(/#.*/, "").trim())
      .filter(Boolean);
    expect(commands).toEqual(["npm install", "npm start", "npm test", "npm run dev"]);
    // npm install builds through prepare; npm test is what CI runs (it would run this file again).
    expect(scripts.prepare).toBe("npm run build");
    expect(readFileSync(join(PROJECT_ROOT, ".ci/run"), "utf8")).toMatch(/^npm test$/m);
    for (const command of ["npm start", "npm run dev"]) {
      const port = await freePort();
      const server = start(`exec ${command} -- --port ${port} --data-dir ${join(scratch, command.replace(/ /g, "-"))}`);
      const [, url] = await server.waitFor(LISTENING, 60_000);
      expect(url).toBe(`http://127.0.0.1:${port}`);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      // SIGTERM to the PID that was started, as `kill $!` sends it, stops npm start cleanly.
      const exit = await server.stop("SIGTERM");
      if (command === "npm start") expect(exit).toBe(0);
    }
  });

  it("the library snippet starts and stops a server", async () => {
    const file = join(inPackage, "library.ts");
    writeFileSync(file, block("library").text);
    const { stdout } = await runScript(`exec node --import tsx ${file}`);
    expect(stdout).toMatch(/^http:\/\/127\.0\.0\.1:\d+\n$/);
  });

  it("the tour: the subscriber prints a snapshot, then the changes at offsets 1, 2, 3; List reads them back", { timeout: 60_000 }, async () => {
    expect(README).toContain("then one `change` per write,\nwith offsets 1, 2, 3.");
    const server = await startServer();
    const port = Number(new URL(server.url).port);
    const subscriber = start(localize(block("tour-subscribe").text, { 3112: port }));
    await subscriber.waitFor(/"snapshot"/);
    const { stdout } = await runScript(localize(block("tour-write").text, { 3112: port }));
    await subscriber.waitFor(/("change"[\s\S]*){3}/);
    await subscriber.stop();
    // After the messages, buf curl reports its own cancellation.
    const messages = jsonDocuments(subscriber.output()).filter((m) => m.code !== "canceled");
    expect(Object.keys(messages[0])).toEqual(["snapshot"]);
    const changes = messages.slice(1).map((m) => m.change as { offset: string; itemId: string });
    expect(changes.map((c) => [c.offset, c.itemId])).toEqual([
      ["1", "m1"],
      ["2", "m2"],
      ["3", "m1"],
    ]);
    const list = jsonDocuments(stdout).at(-1) as { items: { itemId: string; data: unknown }[] };
    expect(list.items.map((i) => [i.itemId, i.data])).toEqual([
      ["m1", { text: "hello", likes: 1 }],
      ["m2", { text: "hi" }],
    ]);
  });

  it("reflection lists the methods of every service", async () => {
    const server = await startServer();
    const { stdout } = await runScript(localize(block("reflection-list").text, { 3112: Number(new URL(server.url).port) }));
    const methods = stdout.trim().split("\n");
    for (const method of ["iii.stream.v1.StreamService/Subscribe", "iii.stream.v1.TriggerService/RegisterTrigger", "grpc.health.v1.Health/Check"]) {
      expect(methods).toContain(method);
    }
  });

  it("TLS: the certificate openssl makes serves https, and buf curl trusts it by --cacert", { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(scratch, "tls-"));
    await runScript(block("tls-cert").text, { cwd: dir });
    const inDir = (text: string) => text.replace(/\b(cert|key)\.pem\b/g, (file) => join(dir, file));
    const port = await freePort();
    const server = start(inDir(localize(block("tls-start").text, { 3112: port })));
    const [, url] = await server.waitFor(LISTENING, 60_000);
    expect(url).toBe(`https://127.0.0.1:${port}`);
    expect(README).toContain("It says `iii-stream listening on https://127.0.0.1:3112`.");
    const { stdout } = await runScript(inDir(localize(block("tls-call").text, { 3112: port })));
    expect(stdout).toContain("iii.stream.v1.StreamService/Subscribe");
    expect(jsonDocuments(stdout).at(-1)).toEqual({});
    await server.stop();
  });

  describe("a remote function in Python, registered by hand and from a config file", () => {
    let audit: RunningCommand;
    let auditPort: number;

    beforeAll(async () => {
      auditPort = await freePort();
      const file = join(scratch, "audit.py");
      writeFileSync(file, localize(block("audit-function").text, { 9000: auditPort }));
      audit = start(`exec python3 -u ${file}`);
      await waitUntil(() => canConnect(auditPort), "audit.py to listen");
    });

    it("prints what the README says after RegisterFunction, RegisterTrigger and a Set", async () => {
      const claim = /`audit\.py` prints `([^`]+)`/.exec(README)?.[1];
      expect(claim).toBeDefined();
      const server = await startServer();
      await runScript(localize(block("audit-register").text, { 3112: Number(new URL(server.url).port), 9000: auditPort }));
      await audit.waitFor(new RegExp(`^${claim!.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m"));
    });

    it("the config file: an unset key variable is named; with it set, keyless writes are refused and keyed ones reach the function", { timeout: 60_000 }, async () => {
      const config = join(scratch, "iii-stream.yaml");
      writeFileSync(config, localize(block("config-file").text, { 9000: auditPort }));
      const port = await freePort();
      const startScript = localize(block("config-start").text, { 3112: port }).replace("iii-stream.yaml", config);

      // Without the export line, the variable is unset: the start stops and says which.
      const unset = start(startScript.replace(/^export APP_API_KEY=.*$/m, "unset APP_API_KEY"));
      await unset.waitFor(/api_keys\.0: environment variable APP_API_KEY is not set/);
      expect(await unset.exited).toBe(2);

      const server = start(startScript, { trace: true });
      await server.waitFor(LISTENING, 60_000);
      const [, key] = await server.waitFor(/^\+ export '?APP_API_KEY=([^'\s]+)'?$/m);
      const write = localize(block("config-write").text, { 3112: port });
      const refused = await runScript(write, { env: { APP_API_KEY: "" } });
      expect(JSON.parse(refused.stdout)).toMatchObject({ code: "unauthenticated" });
      const accepted = await runScript(write, { env: { APP_API_KEY: key } });
      expect(JSON.parse(accepted.stdout)).toMatchObject({ revision: "1" });
      await audit.waitFor(/^audit::log chat a2 \{'type': 'create', 'data': \{'text': 'with a key'\}\}$/m);
    });
  });

  it("the presence example: the excerpt is in examples/presence.ts, and running it prints the output shown", { timeout: 60_000 }, async () => {
    expect(readFileSync(join(PROJECT_ROOT, "examples/presence.ts"), "utf8")).toContain(block("presence-excerpt").text);
    expect(block("presence-run").text).toBe("npx tsx examples/presence.ts\n");
    const { stdout } = await runScript("exec npx tsx examples/presence.ts");
    // The audit line's timestamp is the moment of the write.
    const shown = block("presence-output").text.replace(/"timestamp":\d+/, '"timestamp":T');
    expect(stdout.replace(/"timestamp":\d+/, '"timestamp":T')).toBe(shown);
  });

  describe("the WebSocket bridge", () => {
    const ORIGIN = "https://app.example.com";
    let server: ServerProcess;
    let port: number;
    /** The snippets' `new WebSocket(url)`, with the Origin header a page on ORIGIN sends. */
    class PageWebSocket extends WebSocket {
      constructor(url: string) {
        super(url, { origin: ORIGIN });
      }
    }

    beforeAll(async () => {
      const config = join(scratch, "bridge.yaml");
      writeFileSync(config, `allowed_origins: "${ORIGIN}"\n`);
      server = await startServer(["--config", config]);
      port = Number(new URL(server.url).port);
    });

    async function set(itemId: string, data: unknown): Promise<void> {
      await call(server.url, "Set", { streamName: "chat", groupId: "room-1", itemId, data });
    }

    it("the client messages and the server's wrapper are what the stream socket speaks", async () => {
      const [joinMessage, leaveMessage] = block("socket-client-messages").text.trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
      const documented = JSON.parse(block("socket-server-message").text) as Record<string, unknown>;
      // The join resumes from offset 12 of room-1: 13 writes later the 13th arrives as documented.
      for (let n = 1; n <= 12; n++) await set(`w${n}`, { n });
      const socket = await openSocket(wsUrl(server.url), { origin: ORIGIN });
      socket.send(joinMessage);
      await set("m1", { text: "edited" });
      const received = await socket.next((m) => m.offset === 13);
      // The documented message is an update of m1 at revision 2; here m1 is new.
      expect(Object.keys(received).sort()).toEqual(Object.keys(documented).sort());
      const { timestamp: _t, event: _e, revision: _r, ...fields } = documented;
      expect(received).toMatchObject({ ...fields, event: { type: "create", data: { text: "edited" } }, revision: 1 });
      socket.send(leaveMessage);
      await set("m2", { text: "after leave" });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(socket.messages.filter((m) => m.id === "m2")).toEqual([]);
      await socket.close();
    });

    /** Runs a browser snippet in this process with the page's WebSocket and the render hooks it calls. */
    function runPageSnippet(id: string, hooks: Record<string, (...args: never[]) => unknown>): WebSocket[] {
      const sockets: WebSocket[] = [];
      const Recording = class extends PageWebSocket {
        constructor(url: string) {
          super(url);
          sockets.push(this);
        }
      };
      const names = Object.keys(hooks);
      // eslint-disable-next-line @typescript-eslint/no-implied-eval
      new Function("WebSocket", ...names, localize(block(id).text, { 3112: port }))(Recording, ...names.map((name) => hooks[name]));
      return sockets;
    }

    it("the worker page snippet renders the list, then each change its trigger delivers", async () => {
      const rendered: unknown[] = [];
      const sockets = runPageSnippet("worker-browser", { render: ((value: unknown) => rendered.push(value)) as never });
      await waitUntil(() => rendered.length === 1, "the first render");
      expect(rendered[0]).toEqual([...(await listValues(server.url, "chat", "room-1")).values()]);
      await set("m7", { text: "seen by the trigger" });
      await waitUntil(() => rendered.length === 2, "a rendered change");
      expect(rendered[1]).toMatchObject({ type: "stream", streamName: "chat", groupId: "room-1", id: "m7", event: { type: "create", data: { text: "seen by the trigger" } } });
      for (const socket of sockets) socket.close();
    });

    it("the Node worker snippet writes m1 and gates joins of chat", { timeout: 30_000 }, async () => {
      const file = join(inPackage, "worker.ts");
      writeFileSync(file, localize(block("worker-node").text, { 3112: port }));
      const worker = start(`exec node --import tsx ${file}`);
      await waitUntil(async () => JSON.stringify((await listValues(server.url, "chat", "room-1")).get("m1")) === '{"text":"hi"}', "m1 written by the worker");
      // A join without a user in its context is refused once the gate is registered.
      await waitUntil(async () => {
        const socket = await openSocket(wsUrl(server.url));
        socket.send({ type: "join", data: { subscriptionId: "s", streamName: "chat", groupId: "room-1" } });
        const answer = await socket.next((m) => m.subscriptionId === "s" || m.type === "unauthorized");
        await socket.close();
        return answer.type === "unauthorized" || (answer.event as { type?: string } | undefined)?.type === "unauthorized";
      }, "the gate to refuse a join");
      await worker.stop();
    });

    /** Runs a client-library snippet with Node (`iii-stream/client` is the package itself), after `prelude`. */
    function runClientSnippet(id: string, prelude = ""): RunningCommand {
      const file = join(inPackage, `${id}.ts`);
      const snippet = localize(block(id).text, { 3112: port });
      const [imports, body] = [snippet.split("\n").filter((l) => l.startsWith("import ")), snippet.split("\n").filter((l) => !l.startsWith("import "))];
      writeFileSync(file, `${imports.join("\n")}\n${prelude}${body.join("\n")}`);
      return start(`exec node --import tsx ${file}`);
    }

    it("the Node client snippet writes m1, goes live, then prints each change", { timeout: 30_000 }, async () => {
      const watcher = runClientSnippet("client-node");
      await watcher.waitFor(/^live: \d+ items at offset \d+$/m);
      await set("m5", { text: "watched" });
      await watcher.waitFor(/^create m5 \d+$/m);
      await watcher.stop();
    });

    it("the browser client snippet renders the items on each change and shows the status", { timeout: 30_000 }, async () => {
      const hooks = [
        "const render = (items: Map<string, { data: unknown }>) => console.log(JSON.stringify({ render: [...items].map(([id, item]) => [id, item.data]) }));",
        "const showStatus = (status: string) => console.log(JSON.stringify({ status }));",
        "",
      ].join("\n");
      const page = runClientSnippet("client-browser", hooks);
      await page.waitFor(/"status":"live"/);
      await set("m6", { text: "rendered" });
      await page.waitFor(/"render":.*"m6",\{"text":"rendered"\}/);
      await page.stop();
    });
  });

  it("the command line: the commands print what their comments say, and watch pipes each change into jq", { timeout: 60_000 }, async () => {
    const server = await startServer();
    // `iii-stream` as an installed package puts it on the PATH.
    const bin = join(scratch, "cli-bin");
    mkdirSync(bin, { recursive: true });
    symlinkSync(join(PROJECT_ROOT, "bin/iii-stream.mjs"), join(bin, "iii-stream"));
    const env = { PATH: `${bin}:${process.env.PATH}`, III_STREAM_URL: server.url };
    const commands = block("cli-commands").text;
    const { stdout } = await runScript(commands, { env });
    const lines = stdout.trimEnd().split("\n");
    const shown = (command: string) => new RegExp(`${command.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}.*# (.*)$`, "m").exec(commands)![1];
    expect(lines[0]).toBe(shown("set chat room-1 m1"));
    expect(JSON.parse(lines[1])).toMatchObject({ revision: 2, offset: 2, newValue: { text: "hello", likes: 1 } });
    expect(lines[2].startsWith(shown("get chat room-1 m1").replace("...}", ""))).toBe(true);
    expect(JSON.parse(lines[3])).toMatchObject({ revision: 1, offset: 3, newValue: { text: "hi" } });
    expect(lines[4]).toMatch(/^ITEM +REVISION +UPDATED +DATA$/);
    expect(lines[5]).toMatch(/^m1 +2 +\S+ +\{"text":"hello","likes":1\}$/);
    expect(lines[6]).toMatch(/^m2 +1 +\S+ +\{"text":"hi"\}$/);
    expect(JSON.parse(lines[7])).toMatchObject({ deleted: true, offset: 4 });
    expect(lines[8]).toBe(shown("groups chat"));
    expect(lines[9]).toBe(shown("streams"));
    expect(lines).toHaveLength(10);

    // The watch prints the state first (which jq drops), then every change: write until one shows.
    const watch = start(block("cli-watch").text, { env });
    let n = 0;
    const written = (async () => {
      while (!/^\[\d+,"(create|update)","m3",\d+\]$/m.test(watch.output())) {
        await runScript(`iii-stream set chat room-1 m3 ${n++}`, { env });
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    const [, offset] = await watch.waitFor(/^\[(\d+),"(?:create|update)","m3",\d+\]$/m);
    await written;
    expect(Number(offset)).toBeGreaterThanOrEqual(5);
    await watch.stop("SIGINT");
  });

  it("several instances on one Redis serve the same items", { timeout: 90_000 }, async () => {
    const prefix = uniquePrefix("readme");
    const [a, b] = [await freePort(), await freePort()];
    const lines = localize(block("two-instances").text, { 3112: a, 3113: b }).replace(/shop:/g, prefix).replace(/redis:\/\/127\.0\.0\.1:6379/g, REDIS_URL).trim().split("\n");
    expect(lines).toHaveLength(2);
    try {
      const [first, second] = lines.map((line) => start(line));
      const [[, urlA], [, urlB]] = await Promise.all([first.waitFor(LISTENING, 60_000), second.waitFor(LISTENING, 60_000)]);
      await call(urlA, "Set", { streamName: "shop", groupId: "cart-1", itemId: "i1", data: { qty: 2 } });
      expect((await listValues(urlB, "shop", "cart-1")).get("i1")).toEqual({ qty: 2 });
      await Promise.all([first.stop(), second.stop()]);
    } finally {
      await deleteKeys(prefix);
    }
  });

  it("Metrics: the curl line prints the store's readiness; the scrape configuration targets /metrics on the default port", async () => {
    const server = await startServer();
    const port = Number(new URL(server.url).port);
    const { stdout } = await runScript(localize(block("metrics-curl").text, { 3112: port }));
    expect(stdout).toBe("iii_stream_store_ready 1\n");
    // test/metrics-prometheus.test.ts gives this configuration, its target moved, to a real Prometheus.
    const config = parseYaml(block("metrics-scrape-config").text) as { scrape_configs: { job_name: string; metrics_path: string; static_configs: { targets: string[] }[] }[] };
    expect(config.scrape_configs).toEqual([{ job_name: "iii-stream", metrics_path: "/metrics", static_configs: [{ targets: ["127.0.0.1:3112"] }] }]);
  });

  it("the Kubernetes probes: the pod's args serve them, the readiness probe fails within the drain, the grace covers it", { timeout: 60_000 }, async () => {
    interface Probe {
      httpGet: { path: string; port: number; httpHeaders: { name: string; value: string }[] };
      periodSeconds: number;
      failureThreshold: number;
    }
    const spec = parseYaml(block("kubernetes-probes").text) as {
      terminationGracePeriodSeconds: number;
      containers: { args: string[]; ports: { containerPort: number }[]; livenessProbe: Probe; readinessProbe: Probe }[];
    };
    const [container] = spec.containers;
    const { livenessProbe: liveness, readinessProbe: readiness } = container;
    expect([liveness.httpGet.port, readiness.httpGet.port, container.ports[0].containerPort]).toEqual([3112, 3112, 3112]);
    const drainMs = Number(container.args[container.args.indexOf("--drain-ms") + 1]);
    // Readiness fails before the drain ends, and the kubelet kills only after the drain and the 3 s of shutdown.
    expect(readiness.periodSeconds * readiness.failureThreshold * 1000).toBeLessThan(drainMs);
    expect(spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(drainMs + 3000);

    const prefix = uniquePrefix("readme-k8s");
    const port = await freePort();
    const args = container.args.map((arg) => (arg === "shop:" ? prefix : arg.replace("redis://127.0.0.1:6379", REDIS_URL)));
    const server = await spawnServer([...args, "--port", String(port)]);
    servers.push(server);
    /** What the kubelet's httpGet sees, with the probe's headers (fetch may not set Host). */
    const probe = (what: Probe, host?: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const headers = Object.fromEntries(what.httpGet.httpHeaders.map((h) => [h.name, host ?? h.value]));
        const req = request({ host: "127.0.0.1", port, path: what.httpGet.path, headers }, (res) => {
          let body = "";
          res.on("data", (chunk: Buffer) => (body += chunk.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("error", reject);
        req.end();
      });
    try {
      expect(await probe(liveness)).toEqual({ status: 200, body: '{"status":"ok"}' });
      expect(await probe(readiness)).toEqual({ status: 200, body: '{"status":"ready","adapter":"redis"}' });
      // Without the Host header the kubelet would send the pod's address, which the Host check refuses.
      expect((await probe(readiness, `10.1.2.3:${port}`)).status).toBe(421);
      server.child.kill("SIGTERM");
      let ready = await probe(readiness);
      while (ready.status === 200) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        ready = await probe(readiness);
      }
      expect(ready.status).toBe(503);
      expect(JSON.parse(ready.body)).toMatchObject({ status: "draining" });
      expect((await probe(liveness)).status).toBe(200);
    } finally {
      server.child.kill("SIGKILL");
      await server.exited;
      await deleteKeys(prefix);
    }
  });
});
