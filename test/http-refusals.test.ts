/**
 * Refusals of plain HTTP requests say what was wrong and what is accepted (issue 20
 * item 5): Connect answers an unsupported Content-Type (415) and a wrong HTTP method
 * (405) with an empty body by itself, and an unknown route used to get a bare 404.
 */
import http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type RunningServer } from "./support/server.js";

let running: RunningServer;

beforeAll(async () => {
  running = await startServer();
});

afterAll(async () => {
  await running?.stop();
});

const SET = "/iii.stream.v1.StreamService/Set";
const SUBSCRIBE = "/iii.stream.v1.StreamService/Subscribe";
const BODY = JSON.stringify({ stream_name: "refusals", group_id: "g", item_id: "i", data: 1 });

async function call(path: string, init: RequestInit = {}): Promise<{ status: number; type: string | null; body: string }> {
  const response = await fetch(`${running.url}${path}`, init);
  return { status: response.status, type: response.headers.get("content-type"), body: await response.text() };
}

/** fetch always sends a Content-Type with a string body; this request has none. */
function withoutContentType(path: string): Promise<{ status: number; body: string }> {
  const body = new Blob([BODY]).stream();
  return call(path, { method: "POST", body, duplex: "half" } as RequestInit);
}

describe("415 for a missing or unsupported Content-Type", () => {
  it("a unary call without a Content-Type is told it has none and what the method accepts", async () => {
    const refused = await withoutContentType(SET);
    expect(refused.status).toBe(415);
    expect(refused.body).toContain(`POST ${SET}: the request has no Content-Type; it accepts application/json, application/proto, application/grpc`);
  });

  it("a unary call with a wrong Content-Type is told which it sent", async () => {
    const refused = await call(SET, { method: "POST", headers: { "content-type": "text/plain" }, body: BODY });
    expect(refused).toMatchObject({ status: 415, type: "text/plain; charset=utf-8" });
    expect(refused.body).toContain('Content-Type "text/plain" is not one it accepts; it accepts application/json, application/proto');
    expect(refused.body).toContain("application/grpc-web+json");
  });

  it("Subscribe, a streaming method, names the streaming content types", async () => {
    const refused = await call(SUBSCRIBE, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(refused.status).toBe(415);
    expect(refused.body).toContain('Content-Type "application/json" is not one it accepts; it accepts application/connect+json, application/connect+proto');
  });

  it("over HTTP/2 too", async () => {
    const session = http2.connect(running.url);
    try {
      const stream = session.request({ ":method": "POST", ":path": SET, "content-type": "application/xml" });
      stream.end(BODY);
      let status = 0;
      let body = "";
      stream.on("response", (headers) => (status = Number(headers[":status"])));
      stream.on("data", (chunk: Buffer) => (body += chunk.toString()));
      await new Promise((resolve) => stream.on("close", resolve));
      expect(status).toBe(415);
      expect(body).toContain('Content-Type "application/xml" is not one it accepts');
    } finally {
      session.close();
    }
  });

  it("every content type a refusal lists is one the method takes", async () => {
    const refused = await call(SET, { method: "POST", headers: { "content-type": "text/plain" }, body: BODY });
    const listed = /it accepts (.*)$/m.exec(refused.body)![1].split(", ");
    expect(listed.length).toBeGreaterThan(5);
    for (const contentType of listed) {
      const answer = await call(SET, { method: "POST", headers: { "content-type": contentType }, body: BODY });
      expect({ contentType, status: answer.status }).not.toEqual({ contentType, status: 415 });
    }
  });
});

describe("405 for a wrong HTTP method", () => {
  it("names the method to use", async () => {
    const refused = await call(SET, { method: "PUT", headers: { "content-type": "application/json" }, body: BODY });
    expect(refused.status).toBe(405);
    expect(refused.body).toContain(`${SET} is called with POST, not PUT`);
  });
});

describe("404 for an unknown route", () => {
  it("names the route asked for and lists the services, their methods and the other endpoints", async () => {
    const refused = await call("/nope?x=1");
    expect(refused).toMatchObject({ status: 404, type: "text/plain; charset=utf-8" });
    expect(refused.body).toContain("no route for GET /nope; the routes are:");
    expect(refused.body).toContain("POST /iii.stream.v1.StreamService/{Set,Get,Delete,");
    expect(refused.body).toContain("Subscribe");
    expect(refused.body).toContain("POST /iii.stream.v1.TriggerService/{");
    expect(refused.body).toContain("POST /grpc.health.v1.Health/{Check,Watch}");
    expect(refused.body).toContain("GET /livez, /readyz, /healthz");
    expect(refused.body).toContain("the WebSocket endpoints are /, /worker");
  });

  it("an unknown method of a known service is named too", async () => {
    const refused = await call("/iii.stream.v1.StreamService/Frobnicate", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(refused.status).toBe(404);
    expect(refused.body).toContain("no route for POST /iii.stream.v1.StreamService/Frobnicate; the routes are:");
  });
});
