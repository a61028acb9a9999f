/**
 * The ops of a delta change (`Change.ops`) as the server's own update-op code takes
 * them, so that the view applies them exactly as the server did.
 */
import type { UpdateOp as WireUpdateOp } from "../../gen/iii/stream/v1/stream_pb.js";
import type { UpdateOp } from "../core/update-ops.js";
import { fromValue } from "./values.js";

/** Undefined when an op names no operation (a server newer than this client): the change cannot be applied. */
export function opsFromWire(ops: readonly WireUpdateOp[]): UpdateOp[] | undefined {
  const result: UpdateOp[] = [];
  for (const { op } of ops) {
    switch (op.case) {
      case "set":
      case "append":
        result.push({ type: op.case, path: op.value.path, value: fromValue(op.value.value) });
        break;
      case "merge":
        result.push({ type: "merge", path: op.value.path, value: op.value.value ?? {} });
        break;
      case "increment":
      case "decrement":
        result.push({ type: op.case, path: op.value.path, by: op.value.by });
        break;
      case "remove":
        result.push({ type: "remove", path: op.value.path });
        break;
      default:
        return undefined;
    }
  }
  return result;
}
