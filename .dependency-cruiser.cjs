/**
 * The layering of src/, checked in CI (`npm run check:arch`). From the bottom up:
 * core (the domain: model, ports, engine) < adapters and access < functions
 * < rpc and ws (the transports, side by side) < server < cli < index.ts (the public API).
 * A folder may import its own files and the folders below it, never one above it.
 * client/ (`iii-stream/client`) stands beside them: it reaches the server only over the wire.
 * console/ (the web console's page) sits on the client's browser entry; the server serves
 * its built files and imports none of it.
 */
const below = (folder) => `^src/(?!${folder}/)`;

/** @type {import("dependency-cruiser").IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-cycles",
      comment: "A file-level import cycle makes the reader go round in circles; put the shared types below both.",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "core-is-the-bottom",
      comment: "core/ is the domain: it knows no adapter, transport, function runtime or generated code.",
      severity: "error",
      from: { path: "^src/core/" },
      to: { path: [below("core"), "^gen/"] },
    },
    {
      name: "core-knows-no-network",
      comment: "core/ knows nothing of HTTP, WebSockets, Connect or Redis.",
      severity: "error",
      from: { path: "^src/core/" },
      to: { path: "^(http|http2|net|tls|node:http|node:http2|node:net|node:tls)$|node_modules/(ws|@connectrpc|ioredis|better-sqlite3)/", dependencyTypesNot: ["type-only"] },
    },
    {
      name: "adapters-import-only-core",
      comment: "Adapters implement the ports of core/ and nothing above them.",
      severity: "error",
      from: { path: "^src/adapters/" },
      to: { path: "^src/(?!adapters/|core/)" },
    },
    {
      name: "access-imports-only-core",
      comment: "access/ (keys, origins, handshakes) is shared by both transports, so it sits below them.",
      severity: "error",
      from: { path: "^src/access/" },
      to: { path: "^src/(?!access/|core/)" },
    },
    {
      name: "functions-below-transports",
      comment: "functions/ is reached by the transports and the server, never the other way round; it gets its stores injected.",
      severity: "error",
      from: { path: "^src/functions/" },
      to: { path: "^src/(?!functions/|core/|access/)" },
    },
    {
      name: "transports-do-not-import-each-other",
      comment: "rpc/ and ws/ are thin transports side by side; what both need lives below them.",
      severity: "error",
      from: { path: "^src/(rpc|ws)/" },
      to: { path: "^src/(adapters|server|cli)/|^src/index\\.ts$" },
    },
    {
      name: "rpc-does-not-import-ws",
      severity: "error",
      from: { path: "^src/rpc/" },
      to: { path: "^src/ws/" },
    },
    {
      name: "ws-does-not-import-rpc",
      severity: "error",
      from: { path: "^src/ws/" },
      to: { path: "^src/rpc/" },
    },
    {
      name: "server-below-cli",
      comment: "The server is a library; the command line is one of its users.",
      severity: "error",
      from: { path: "^src/server/" },
      to: { path: "^src/cli/|^src/index\\.ts$" },
    },
    {
      name: "client-talks-only-over-the-wire",
      comment:
        "client/ runs in browsers and in other processes than the server: it imports the generated code, its own files and what it shares with the server (the codes of core/errors.ts, the JSON of core/json.ts, and the pure update ops of core/update-ops.ts, with which it applies deltas exactly as the server applied the update), never server code.",
      severity: "error",
      from: { path: "^src/client/" },
      to: { path: "^src/(?!client/|core/errors\\.ts$|core/json\\.ts$|core/update-ops\\.ts$)" },
    },
    {
      name: "client-browser-path-has-no-node",
      comment: "Only the Node entry (client/node.ts) may reach Node's modules and Node-only packages; everything else is bundled for browsers.",
      severity: "error",
      from: { path: "^src/client/", pathNot: "^src/client/node\\.ts$" },
      to: { path: "^(node:|http|http2|net|tls|fs|stream)|node_modules/(ws|@connectrpc/connect-node)/", dependencyTypesNot: ["type-only"] },
    },
    {
      name: "nothing-imports-the-client",
      comment: "The server does not depend on its client library; the command line (a client of it) may.",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/(client|cli|console)/" },
      to: { path: "^src/client/" },
    },
    {
      name: "console-uses-only-the-client",
      comment:
        "console/ is a page in a browser, a client like any other: it imports its own files and the client library's browser entry, never server code, Node or another entry of the client.",
      severity: "error",
      from: { path: "^src/console/" },
      to: { path: "^src/(?!console/|client/browser\\.ts$)|^gen/|^(node:|http|http2|net|tls|fs|stream)|node_modules/(ws|@connectrpc/connect-node)/", dependencyTypesNot: ["type-only"] },
    },
    {
      name: "nothing-imports-the-console",
      comment: "The server serves the console's built files (dist/console); no module imports its sources.",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/console/" },
      to: { path: "^src/console/" },
    },
    {
      name: "public-api-is-the-top",
      comment: "index.ts declares the public API; nothing inside src/ imports it.",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/index\\.ts$" },
      to: { path: "^src/index\\.ts$" },
    },
    {
      name: "src-stands-alone",
      comment: "The package never reaches into tests, benchmarks or examples.",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^(test|bench|examples)/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default"], extensions: [".ts", ".js"] },
  },
};
