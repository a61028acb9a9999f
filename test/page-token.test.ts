import { describe, expect, it } from "vitest";
import { decodePageToken, encodePageToken } from "../src/core/page-token.js";

describe("page tokens of dead letters", () => {
  const scope = { kind: "dead-letters", triggerId: "t" } as const;

  it("give back the entry id they were made with; the empty token is the first page", () => {
    expect(decodePageToken(scope, encodePageToken(scope, "1712345678901-0"))).toBe("1712345678901-0");
    expect(decodePageToken(scope, "")).toBeUndefined();
  });

  it("are refused for another trigger, for another list, and when edited", () => {
    const token = encodePageToken(scope, "7");
    expect(() => decodePageToken({ kind: "dead-letters", triggerId: "u" }, token)).toThrow(/ListDeadLetters \(a token is valid only for the trigger_id it came from\)/);
    expect(() => decodePageToken({ kind: "groups", streamName: "t" }, token)).toThrow(/another list/);
    expect(() => decodePageToken({ kind: "dead-letters", triggerId: "t" }, encodePageToken({ kind: "groups", streamName: "t" }, "7"))).toThrow(/another list/);
    expect(() => decodePageToken(scope, `${token.slice(0, -2)}xx`)).toThrow(/malformed/);
  });
});
