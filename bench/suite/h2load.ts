import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { create, fromJson, toBinary, toJsonString } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { GetRequestSchema, SetRequestSchema } from "../../gen/iii/stream/v1/stream_pb.js";
import type { UnaryProtocol } from "../load/jobs.js";
import { LOAD_CORE, PINNING } from "./processes.js";
import { totalCpuSeconds } from "./proc-stats.js";

/**
 * h2load (nghttp2's load generator, Debian's `nghttp2-client`) as a unary load that is
 * not the bottleneck: written in C, it sends one pre-encoded request body over and over,
 * so a server answers several times the calls a Node caller can make. It cannot vary the
 * body, so every Set writes the same item; Get reads one that exists.
 */
export const H2LOAD_AVAILABLE = spawnSync("h2load", ["--version"]).status === 0;

export type H2loadMethod = "Set" | "Get";

export interface H2loadFigures {
  system: string;
  method: H2loadMethod;
  protocol: UnaryProtocol;
  concurrency: number;
  callsPerSecond: number;
  serverCpuMicrosPerCall: number;
  /** Calls h2load counts as failed, errored or timed out (gRPC statuses travel in trailers h2load does not read). */
  failed: number;
}

interface Bodies {
  files: Record<string, string>;
}

/** The request bodies, written once to a temporary directory. */
function writeBodies(): Bodies {
  const directory = mkdtempSync(path.join(os.tmpdir(), "iii-stream-h2load-"));
  const data = fromJson(ValueSchema, { name: "bench", count: 1, tags: ["a", "b"] });
  const messages = {
    Set: [SetRequestSchema, create(SetRequestSchema, { streamName: "bench", groupId: "h2load", itemId: "item-1", data })] as const,
    Get: [GetRequestSchema, create(GetRequestSchema, { streamName: "bench", groupId: "h2load", itemId: "item-1" })] as const,
  };
  const files: Record<string, string> = {};
  for (const [method, [schema, message]] of Object.entries(messages)) {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const binary = toBinary(schema as any, message);
    const envelope = Buffer.alloc(5 + binary.byteLength);
    envelope.writeUInt32BE(binary.byteLength, 1);
    envelope.set(binary, 5);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const json = toJsonString(schema as any, message);
    for (const [kind, bytes] of [["proto", binary], ["grpc", envelope], ["json", Buffer.from(json)]] as const) {
      const file = path.join(directory, `${method}.${kind}`);
      writeFileSync(file, bytes);
      files[`${method}.${kind}`] = file;
    }
  }
  return { files };
}

let bodies: Bodies | undefined;

/** h2load's arguments for a protocol: HTTP version, connections and streams per connection, headers, body. */
function argumentsFor(method: H2loadMethod, protocol: UnaryProtocol, concurrency: number): string[] {
  bodies ??= writeBodies();
  switch (protocol) {
    case "connect-binary-h2":
      return ["-c", "1", "-m", String(concurrency), "-H", "content-type: application/proto", "-d", bodies.files[`${method}.proto`]];
    case "grpc":
      return ["-c", "1", "-m", String(concurrency), "-H", "content-type: application/grpc", "-H", "te: trailers", "-d", bodies.files[`${method}.grpc`]];
    case "connect-json-h1":
      return ["--h1", "-c", String(concurrency), "-m", "1", "-H", "content-type: application/json", "-d", bodies.files[`${method}.json`]];
  }
}

/** Runs h2load for `seconds` on the load core and counts the calls and the servers' CPU over it. */
export async function runH2load(
  target: { system: string; url: string; pids: number[] },
  method: H2loadMethod,
  protocol: UnaryProtocol,
  concurrency: number,
  seconds: number,
): Promise<H2loadFigures> {
  const args = [...argumentsFor(method, protocol, concurrency), "-D", String(seconds), `${target.url}/iii.stream.v1.StreamService/${method}`];
  const command = PINNING ? ["taskset", "-c", LOAD_CORE, "h2load", ...args] : ["h2load", ...args];
  const before = totalCpuSeconds(target.pids);
  const started = performance.now();
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(command[0], command.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    child.stdout.on("data", (chunk: Buffer) => (text += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (text += chunk.toString()));
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(text) : reject(new Error(`h2load exited ${code}:\n${text.slice(-2000)}`))));
  });
  const wallSeconds = (performance.now() - started) / 1000;
  const after = totalCpuSeconds(target.pids);
  const requests = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(output);
  const statuses = /status codes: (\d+) 2xx/.exec(output);
  if (!requests || !statuses) throw new Error(`h2load printed no request counts:\n${output.slice(-2000)}`);
  const ok = Number(statuses[1]);
  return {
    system: target.system,
    method,
    protocol,
    concurrency,
    callsPerSecond: ok / wallSeconds,
    serverCpuMicrosPerCall: before === undefined || after === undefined ? NaN : ((after - before) / Math.max(1, ok)) * 1e6,
    failed: Number(requests[3]) + Number(requests[4]) + Number(requests[5]),
  };
}
