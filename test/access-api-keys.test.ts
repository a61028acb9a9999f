import { describe, expect, it } from "vitest";
import { ApiKeys } from "../src/access/api-keys.js";

describe("API keys (access/api-keys.ts, used by Connect and the WebSocket bridge)", () => {
  it("accepts `Bearer <key>` with any configured key, as both transports have", () => {
    const keys = new ApiKeys(["k1", "second-key"]);
    expect(keys.configured).toBe(true);
    for (const header of ["Bearer k1", "bearer second-key", "BEARER  k1", "Bearer k1  "]) expect(keys.accepts(header), header).toBe(true);
  });

  it("refuses a missing, malformed or unknown key", () => {
    const keys = new ApiKeys(["k1"]);
    for (const header of [undefined, null, "", "k1", "Basic k1", "Bearer", "Bearer k2", "Bearer k1 k1", "Bearer k", "Bearer k12"]) {
      expect(keys.accepts(header), String(header)).toBe(false);
    }
  });

  it("without keys, is not configured and accepts nothing", () => {
    const keys = new ApiKeys([]);
    expect(keys.configured).toBe(false);
    expect(keys.accepts("Bearer anything")).toBe(false);
  });
});
