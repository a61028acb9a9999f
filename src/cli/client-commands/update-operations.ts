import type { JsonValue, UpdateOperation } from "../../client/node.js";
import { UsageError } from "./exit-codes.js";

/** The fields each operation type takes besides `type`; any other field is a typo to refuse. */
const FIELDS: Record<UpdateOperation["type"], readonly string[]> = {
  set: ["path", "value"],
  merge: ["path", "value"],
  increment: ["path", "by"],
  decrement: ["path", "by"],
  append: ["path", "value"],
  remove: ["path"],
};

/**
 * OPS_JSON as update operations. The client library checks each operation's values; this
 * refuses the fields it would ignore, so that `{"type":"set","paht":["a"],"value":1}` is an
 * error rather than a write of the whole value (a missing path means the whole value).
 */
export function updateOperations(ops: JsonValue): UpdateOperation[] {
  const example = `'[{"type":"increment","path":["n"],"by":1}]'`;
  if (!Array.isArray(ops)) throw new UsageError(`OPS_JSON must be a JSON array of operations, such as ${example}`);
  return ops.map((op, index) => {
    if (typeof op !== "object" || op === null || Array.isArray(op)) throw new UsageError(`operation ${index} must be an object, such as ${example}`);
    const type = op.type;
    if (typeof type !== "string" || !Object.hasOwn(FIELDS, type)) {
      throw new UsageError(`operation ${index} needs a type: ${Object.keys(FIELDS).join(", ")}; got ${JSON.stringify(type ?? null)}`);
    }
    const fields = FIELDS[type as UpdateOperation["type"]];
    const unknown = Object.keys(op).filter((key) => key !== "type" && !fields.includes(key));
    if (unknown.length > 0) throw new UsageError(`operation ${index} (${type}) has no field ${unknown.map((key) => JSON.stringify(key)).join(", ")}; it takes ${fields.join(", ")}`);
    return op as unknown as UpdateOperation;
  });
}
