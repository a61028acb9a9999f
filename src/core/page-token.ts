import { createHash } from "node:crypto";
import { invalidArgument } from "./errors.js";

/**
 * Which list a page token belongs to, and the request fields that name that list: a
 * token is only valid for the same kind and scope (AIP-158: every field but the page
 * size must match the first request).
 */
export type PageScope =
  | { kind: "items"; streamName: string; groupId: string }
  | { kind: "groups"; streamName: string }
  | { kind: "streams"; groupsPerStream: number }
  | { kind: "dead-letters"; triggerId: string };

/**
 * Page tokens carry their cursor in the clear, with no secret: a token is valid across
 * restarts and on every instance of a fleet because it holds nothing but the list and
 * where the last page ended (a created offset for items, the last name for groups and
 * streams, the last entry's id for dead letters). The checksum is not there for secrecy (a client learns nothing it did not
 * already see) but so that a truncated or edited token is refused as malformed instead
 * of silently reading another part of the list.
 */
const VERSION = 1;
const CHECKSUM_BYTES = 8;

export function encodePageToken(scope: PageScope, cursor: number | string): string {
  const body = Buffer.from(JSON.stringify([VERSION, ...scopeFields(scope), cursor]), "utf8");
  return `${body.toString("base64url")}.${checksum(body)}`;
}

/**
 * The cursor of a token made by `encodePageToken` for `scope`; undefined for the empty
 * token (the first page). Anything else is INVALID_ARGUMENT.
 */
export function decodePageToken(scope: PageScope & { kind: "items" }, token: string): number | undefined;
export function decodePageToken(scope: PageScope & { kind: "groups" | "streams" | "dead-letters" }, token: string): string | undefined;
export function decodePageToken(scope: PageScope, token: string): number | string | undefined {
  if (token === "") return undefined;
  const dot = token.indexOf(".");
  const body = Buffer.from(dot < 0 ? "" : token.slice(0, dot), "base64url");
  if (dot < 0 || body.length === 0 || checksum(body) !== token.slice(dot + 1)) {
    throw invalidArgument("page_token is malformed: pass a next_page_token exactly as it was returned");
  }
  let fields: unknown;
  try {
    fields = JSON.parse(body.toString("utf8"));
  } catch {
    throw invalidArgument("page_token is malformed: pass a next_page_token exactly as it was returned");
  }
  const expected = [VERSION, ...scopeFields(scope)];
  if (!Array.isArray(fields) || fields.length !== expected.length + 1 || expected.some((field, i) => fields[i] !== field)) {
    throw invalidArgument(`page_token belongs to another list than this ${describe(scope)}`);
  }
  const cursor: unknown = fields[expected.length];
  const valid = scope.kind === "items" ? Number.isSafeInteger(cursor) && (cursor as number) >= 0 : typeof cursor === "string";
  if (!valid) throw invalidArgument("page_token is malformed: pass a next_page_token exactly as it was returned");
  return cursor as number | string;
}

function scopeFields(scope: PageScope): Array<string | number> {
  switch (scope.kind) {
    case "items":
      return ["items", scope.streamName, scope.groupId];
    case "groups":
      return ["groups", scope.streamName];
    case "streams":
      return ["streams", scope.groupsPerStream];
    case "dead-letters":
      return ["dead-letters", scope.triggerId];
  }
}

function describe(scope: PageScope): string {
  switch (scope.kind) {
    case "items":
      return "List (a token is valid only for the stream_name and group_id it came from)";
    case "groups":
      return "ListGroups (a token is valid only for the stream_name it came from)";
    case "streams":
      return "ListAll (a token is valid only with the groups_per_stream it came from)";
    case "dead-letters":
      return "ListDeadLetters (a token is valid only for the trigger_id it came from)";
  }
}

function checksum(body: Buffer): string {
  return createHash("sha256").update(body).digest().subarray(0, CHECKSUM_BYTES).toString("base64url");
}
