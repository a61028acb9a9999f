import { create, createFileRegistry, fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as v1 from "../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { bufCurl } from "./support/buf-curl.js";
import { startServer, type RunningServer } from "./support/server.js";

const KEY = "reflection-test-key-0123456789";

let running: RunningServer;
beforeAll(async () => {
  // With API keys: reflection describes the schema, which is public, so it needs none.
  running = await startServer({ apiKeys: [KEY] });
});
afterAll(() => running.stop());

const SERVED = [
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
  "iii.stream.v1.StreamService",
  "iii.stream.v1.TriggerService",
];

type Request = MessageInitShape<typeof v1.ServerReflectionRequestSchema>;
type Response = v1.ServerReflectionResponse | v1alpha.ServerReflectionResponse;

async function* each<T>(items: T[]): AsyncIterable<T> {
  yield* items;
}

/** Sends the requests on one reflection stream and collects the answers. */
async function reflect(version: "v1" | "v1alpha", transport: Transport, requests: Request[]): Promise<Response[]> {
  const answers: Response[] = [];
  if (version === "v1") {
    const client = createClient(v1.ServerReflection, transport);
    for await (const answer of client.serverReflectionInfo(each(requests.map((r) => create(v1.ServerReflectionRequestSchema, r))))) answers.push(answer);
  } else {
    const client = createClient(v1alpha.ServerReflection, transport);
    const alpha = requests as MessageInitShape<typeof v1alpha.ServerReflectionRequestSchema>[];
    for await (const answer of client.serverReflectionInfo(each(alpha.map((r) => create(v1alpha.ServerReflectionRequestSchema, r)))))
      answers.push(answer);
  }
  return answers;
}

function fileNames(answer: Response): string[] {
  if (answer.messageResponse.case !== "fileDescriptorResponse") throw new Error(`not files: ${answer.messageResponse.case}`);
  return answer.messageResponse.value.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name);
}

describe("gRPC server reflection", () => {
  it("buf curl --list-methods lists every method of every served service", async () => {
    const result = await bufCurl(["--list-methods", "--http2-prior-knowledge", running.url]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const methods = result.stdout.trim().split("\n");
    expect(methods).toEqual(expect.arrayContaining([
      "iii.stream.v1.StreamService/Set",
      "iii.stream.v1.StreamService/Subscribe",
      "iii.stream.v1.TriggerService/RegisterTrigger",
      "grpc.health.v1.Health/Check",
      "grpc.health.v1.Health/Watch",
      "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ]));
    expect(new Set(methods.map((m) => m.split("/")[0]))).toEqual(new Set(SERVED));
  });

  it("buf curl calls without --schema, over gRPC, through either reflection version", async () => {
    const base = `${running.url}/iii.stream.v1.StreamService`;
    const set = await bufCurl([
      "--protocol", "grpc", "--http2-prior-knowledge", "-H", `authorization: Bearer ${KEY}`,
      "-d", JSON.stringify({ stream_name: "reflect", group_id: "g", item_id: "a", data: { n: 1 } }), `${base}/Set`,
    ]);
    expect(set.stderr).toBe("");
    expect(JSON.parse(set.stdout)).toMatchObject({ newValue: { n: 1 }, revision: "1" });
    for (const protocol of ["grpc-v1", "grpc-v1alpha"]) {
      const get = await bufCurl([
        "--protocol", "grpc", "--http2-prior-knowledge", "--reflect-protocol", protocol, "-H", `authorization: Bearer ${KEY}`,
        "-d", JSON.stringify({ stream_name: "reflect", group_id: "g", item_id: "a" }), `${base}/Get`,
      ]);
      expect(get.stderr).toBe("");
      expect(JSON.parse(get.stdout)).toMatchObject({ item: { itemId: "a", data: { n: 1 } } });
    }
  });

  it("buf curl names an unknown service", async () => {
    const result = await bufCurl(["--http2-prior-knowledge", "-d", "{}", `${running.url}/iii.stream.v1.NoSuchService/Get`]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("iii.stream.v1.NoSuchService");
  });

  describe.each([
    ["v1", "gRPC", () => createGrpcTransport({ baseUrl: running.url })],
    ["v1alpha", "gRPC", () => createGrpcTransport({ baseUrl: running.url })],
    ["v1", "Connect over HTTP/2", () => createConnectTransport({ baseUrl: running.url, httpVersion: "2" })],
    ["v1alpha", "Connect over HTTP/2", () => createConnectTransport({ baseUrl: running.url, httpVersion: "2" })],
  ] as const)("%s over %s", (version, _, transport) => {
    it("answers each request of one stream in order, errors included, and echoes it", async () => {
      const answers = await reflect(version, transport(), [
        { host: "h", messageRequest: { case: "listServices", value: "*" } },
        { messageRequest: { case: "fileContainingSymbol", value: "iii.stream.v1.NoSuch" } },
        { messageRequest: { case: "fileByFilename", value: "no/such.proto" } },
        { messageRequest: { case: "fileContainingExtension", value: { containingType: "iii.stream.v1.SetRequest", extensionNumber: 100 } } },
        { messageRequest: { case: undefined } },
        { messageRequest: { case: "allExtensionNumbersOfType", value: "iii.stream.v1.SetRequest" } },
        { messageRequest: { case: "allExtensionNumbersOfType", value: "iii.stream.v1.StreamService" } },
      ]);
      expect(answers).toHaveLength(7);
      const [list, symbol, file, extension, empty, numbers, notMessage] = answers.map((a) => a.messageResponse);
      expect(answers[0].validHost).toBe("h");
      expect(answers[0].originalRequest?.messageRequest).toEqual({ case: "listServices", value: "*" });
      expect(list.case === "listServicesResponse" && list.value.service.map((s) => s.name)).toEqual(SERVED);
      for (const [error, named] of [[symbol, "iii.stream.v1.NoSuch"], [file, "no/such.proto"], [extension, "iii.stream.v1.SetRequest"], [notMessage, "iii.stream.v1.StreamService"]] as const) {
        expect(error.case).toBe("errorResponse");
        expect(error.case === "errorResponse" && error.value.errorCode).toBe(Code.NotFound);
        expect(error.case === "errorResponse" && error.value.errorMessage).toContain(named);
      }
      expect(answers[1].originalRequest?.messageRequest).toEqual({ case: "fileContainingSymbol", value: "iii.stream.v1.NoSuch" });
      expect(empty.case === "errorResponse" && empty.value.errorCode).toBe(Code.InvalidArgument);
      expect(numbers.case === "allExtensionNumbersResponse" && numbers.value.baseTypeName).toBe("iii.stream.v1.SetRequest");
    });

    it("gives a file with its transitive dependencies, each once, enough to build a registry", async () => {
      const symbols = [
        "iii.stream.v1.StreamService",
        "iii.stream.v1.StreamService.Subscribe",
        "iii.stream.v1.SetRequest",
        "iii.stream.v1.SetRequest.if_revision",
        "grpc.health.v1.HealthCheckResponse.ServingStatus",
        "grpc.health.v1.HealthCheckResponse.SERVING",
        "grpc.reflection.v1alpha.ServerReflection",
        "google.protobuf.Value",
      ];
      const answers = await reflect(version, transport(), [
        { messageRequest: { case: "fileByFilename", value: "iii/stream/v1/triggers.proto" } },
        ...symbols.map((value): Request => ({ messageRequest: { case: "fileContainingSymbol", value } })),
      ]);
      expect(fileNames(answers[0])).toEqual(["iii/stream/v1/triggers.proto", "google/protobuf/struct.proto"]);
      expect(answers.slice(1).map((a) => fileNames(a)[0])).toEqual([
        "iii/stream/v1/stream.proto",
        "iii/stream/v1/stream.proto",
        "iii/stream/v1/stream.proto",
        "iii/stream/v1/stream.proto",
        "grpc/health/v1/health.proto",
        "grpc/health/v1/health.proto",
        "grpc/reflection/v1alpha/reflection.proto",
        "google/protobuf/struct.proto",
      ]);
      const first = answers[1];
      if (first.messageResponse.case !== "fileDescriptorResponse") throw new Error("no files");
      // The requested file comes first; a registry wants each file after its dependencies.
      const files = first.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b)).reverse();
      const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: files }));
      expect(registry.getService("iii.stream.v1.StreamService")?.methods.map((m) => m.name)).toContain("Subscribe");
    });
  });
});
