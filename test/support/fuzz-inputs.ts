import fc from "fast-check";
import { create, fromJson, toBinary, type DescMessage, type JsonValue as ProtoJson } from "@bufbuild/protobuf";
import { WORKER_MESSAGE_TYPES } from "../../src/ws/worker-socket.js";

/*
 * Inputs for the fuzz tests: arbitraries that mix well-formed requests with every kind
 * of damage, and the run settings every fuzz property shares.
 */

/**
 * Runs per property: `FUZZ_RUNS` (npm run fuzz sets a large one), else `fallback`, a few
 * hundred so that `npm test` tries a few thousand inputs in all and stays quick.
 */
export function fuzzRuns(fallback: number): number {
  const runs = Number(process.env.FUZZ_RUNS);
  return Number.isSafeInteger(runs) && runs > 0 ? runs : fallback;
}

/** A test's time limit for `runs` inputs: vitest's default would cut a long `npm run fuzz` short. */
export function fuzzTimeoutMs(fallbackRuns: number): number {
  return Math.max(60_000, fuzzRuns(fallbackRuns) * 100);
}

/**
 * The seed of this run: `FUZZ_SEED` to replay one, else a fresh one. It is chosen here,
 * not by fast-check, so that it can be printed with every failure and in the summary.
 */
export const FUZZ_SEED: number = (() => {
  const given = Number(process.env.FUZZ_SEED);
  return Number.isSafeInteger(given) ? given : Math.floor(Math.random() * 2 ** 31);
})();

/** Counts inputs per property, for the summary a fuzz file prints. */
export const inputsTried = new Map<string, number>();

/**
 * fc.assert with the shared settings. A failure names the seed and the path of the
 * shrunk counterexample and the command that replays it (FUZZ_SEED, FUZZ_PATH).
 */
export async function fuzz<T>(label: string, arbitrary: fc.Arbitrary<T>, check: (input: T) => Promise<void>, fallbackRuns: number): Promise<void> {
  const numRuns = fuzzRuns(fallbackRuns);
  const path = process.env.FUZZ_PATH || undefined;
  const property = fc.asyncProperty(arbitrary, async (input) => {
    inputsTried.set(label, (inputsTried.get(label) ?? 0) + 1);
    await check(input);
  });
  try {
    await fc.assert(property, { numRuns, seed: FUZZ_SEED, path, endOnFailure: false });
  } catch (error) {
    const replay = `FUZZ_SEED=${FUZZ_SEED} FUZZ_RUNS=${numRuns}${path ? ` FUZZ_PATH=${path}` : ""}`;
    (error as Error).message = `fuzz "${label}" failed with seed ${FUZZ_SEED} (replay: ${replay} npx vitest run <file> -t "${label}")\n${(error as Error).message}`;
    throw error;
  }
}

/**
 * Names the fuzzer writes to: a few fixed ones (so that writes meet earlier writes and
 * subscriptions) and random text, including empty, long and unpaired-surrogate strings.
 * Never the canary's names, which carry a random suffix.
 */
export const names: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom("s", "g", "i", "fuzz", "a/b", "ü", " ", "") },
  { weight: 2, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 10 }) },
  { weight: 1, arbitrary: fc.constantFrom("x".repeat(257), "é".repeat(200), "\u0000", "\ud800") },
);

/** JSON values, with the awkward ones: deep nesting, huge and fractional numbers, lone surrogates. */
export const jsonValues: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  { weight: 1, arbitrary: fc.constantFrom(2 ** 60, -(2 ** 53) - 7, 1e308, -0, 0.1, "\ud800", "") },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 80 }).map(nested) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 30 }) },
);

function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { k: value };
  return value;
}

/** Revisions, offsets and sizes as a client might send them, right and wrong. */
export const numbersOnTheWire: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.nat({ max: 5 }) },
  fc.constantFrom(-1, 1.5, 2 ** 53, 2 ** 64, "7", "abc", "-3", "18446744073709551616", null, true, [], {}),
);

/** A JSON request for a StreamService method: mostly its own fields with odd values, sometimes unknown ones. */
export function jsonRequest(method: string): fc.Arbitrary<Record<string, unknown>> {
  const common = {
    streamName: names,
    groupId: names,
    itemId: names,
    data: jsonValues,
    ifRevision: numbersOnTheWire,
    fromOffset: numbersOnTheWire,
    pageSize: numbersOnTheWire,
    pageToken: fc.oneof(fc.string({ maxLength: 30 }), fc.base64String({ maxLength: 40 })),
    groupsPerStream: numbersOnTheWire,
    type: names,
    ops: fc.array(updateOp, { maxLength: 4 }),
  };
  const fields: Record<string, readonly (keyof typeof common)[]> = {
    Set: ["streamName", "groupId", "itemId", "data", "ifRevision"],
    Get: ["streamName", "groupId", "itemId"],
    Delete: ["streamName", "groupId", "itemId", "ifRevision"],
    Update: ["streamName", "groupId", "itemId", "ops", "ifRevision"],
    Send: ["streamName", "groupId", "type", "data", "itemId"],
    List: ["streamName", "groupId", "pageSize", "pageToken"],
    ListGroups: ["streamName", "pageSize", "pageToken"],
    ListAll: ["pageSize", "pageToken", "groupsPerStream"],
    Subscribe: ["streamName", "groupId", "itemId", "fromOffset"],
  };
  // Each field is there nine times in ten: a request missing one is refused before anything else is tried.
  const own = Object.fromEntries(
    (fields[method] ?? []).map((name) => [name, fc.oneof({ weight: 9, arbitrary: common[name] }, { weight: 1, arbitrary: fc.constant(undefined) })]),
  );
  return fc.record(
    {
      ...own,
      // Snake case is as valid in ProtoJSON as camel case; other keys are unknown fields.
      extra: fc.oneof(
        { weight: 4, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: fc.dictionary(fc.constantFrom("if_revison", "stream_name", "item_id", "x", "@type"), jsonValues, { maxKeys: 2 }) },
      ),
    },
  ).map(({ extra, ...rest }) => ({ ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)), ...(extra ?? {}) }));
}

const path = fc.array(fc.oneof(fc.constantFrom("a", "b", "0", "-1", "__proto__", "constructor"), fc.string({ maxLength: 5 })), {
  maxLength: 4,
});

const updateOp: fc.Arbitrary<unknown> = fc.oneof(
  fc.record({ set: fc.record({ path, value: jsonValues }, { requiredKeys: [] }) }),
  fc.record({ merge: fc.record({ path, value: fc.oneof(fc.dictionary(fc.string({ maxLength: 5 }), jsonValues, { maxKeys: 3 }), jsonValues) }, { requiredKeys: [] }) }),
  fc.record({ increment: fc.record({ path, by: numbersOnTheWire }, { requiredKeys: [] }) }),
  fc.record({ decrement: fc.record({ path, by: numbersOnTheWire }, { requiredKeys: [] }) }),
  fc.record({ append: fc.record({ path, value: jsonValues }, { requiredKeys: [] }) }),
  fc.record({ remove: fc.record({ path }, { requiredKeys: [] }) }),
  fc.constantFrom({}, { set: {}, remove: {} }, null, "set"),
);

/** Ways to damage an encoded message: truncate, flip a byte, insert or append bytes, or nothing. */
export const damage: fc.Arbitrary<(bytes: Uint8Array) => Uint8Array> = fc.oneof(
  fc.constant((bytes: Uint8Array) => bytes),
  fc.nat().map((n) => (bytes: Uint8Array) => bytes.subarray(0, bytes.length ? n % bytes.length : 0)),
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([n, x]) => (bytes: Uint8Array) => {
    const copy = Uint8Array.from(bytes);
    if (copy.length) copy[n % copy.length] ^= x;
    return copy;
  }),
  fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 12 })).map(([n, extra]) => (bytes: Uint8Array) => {
    const at = bytes.length ? n % (bytes.length + 1) : 0;
    return Uint8Array.from([...bytes.subarray(0, at), ...extra, ...bytes.subarray(at)]);
  }),
);

/**
 * A binary request body for `schema`: the JSON request above encoded as protobuf where
 * it is a valid message (then damaged or not), or random bytes.
 */
export function binaryRequest(method: string, schema: DescMessage): fc.Arbitrary<Uint8Array> {
  const encoded = fc.tuple(jsonRequest(method), damage).map(([request, hurt]) => hurt(encodeOr(schema, request)));
  return fc.oneof({ weight: 3, arbitrary: encoded }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) });
}

function encodeOr(schema: DescMessage, request: Record<string, unknown>): Uint8Array {
  try {
    return toBinary(schema, fromJson(schema, request as ProtoJson, { ignoreUnknownFields: true }));
  } catch {
    // Not a valid message (a bad value): its fields that are valid, or an empty one.
    return toBinary(schema, create(schema));
  }
}

/**
 * One length-prefixed frame of gRPC, gRPC-Web and Connect streaming: flags, length,
 * payload, with the flags and the length sometimes wrong.
 */
export const frameDamage: fc.Arbitrary<{ flags: number; lengthDelta: number; cut: boolean }> = fc.record({
  flags: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }),
  lengthDelta: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -10, max: 2 ** 31 }) }),
  cut: fc.boolean(),
});

/** Frames `payload`; a frame's length field may disagree with the bytes that follow. */
export function frame(payload: Uint8Array, how: { flags: number; lengthDelta: number; cut: boolean }): Buffer {
  const head = Buffer.alloc(5);
  head[0] = how.flags;
  head.writeUInt32BE(Math.max(0, Math.min(2 ** 32 - 1, payload.length + how.lengthDelta)), 1);
  const body = Buffer.concat([head, payload]);
  return how.cut && body.length > 1 ? body.subarray(0, body.length - 1) : body;
}

/** One frame a stream-socket client might send: joins and leaves with odd fields, any JSON, text, bytes. */
export const streamSocketFrame: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc
      .record(
        {
          type: fc.oneof({ weight: 4, arbitrary: fc.constantFrom("join", "leave") }, { weight: 1, arbitrary: names }),
          data: fc.oneof(
            { weight: 6, arbitrary: fc.record(
              {
                subscriptionId: fc.oneof({ weight: 4, arbitrary: fc.constantFrom("a", "b", "1") }, { weight: 1, arbitrary: jsonValues }),
                streamName: names,
                groupId: names,
                id: fc.oneof(names, fc.constantFrom(null, 5)),
                fromOffset: numbersOnTheWire,
                chunks: fc.oneof(fc.boolean(), jsonValues),
              },
              { requiredKeys: ["subscriptionId", "streamName", "groupId"] },
            ) },
            { weight: 1, arbitrary: jsonValues },
          ),
        },
        { requiredKeys: [] },
      )
      .map((message) => JSON.stringify(message)),
  },
  { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 60 }) },
);

/** The worker protocol's client message types, and its ping. */
const WORKER_TYPES = [...WORKER_MESSAGE_TYPES, "ping"];

/** Functions a worker calls: the stream functions (with snake-case inputs), the registration call, and others. */
const FUNCTION_IDS = [
  "stream::set",
  "stream::get",
  "stream::delete",
  "stream::update",
  "stream::send",
  "stream::list",
  "stream::list_groups",
  "stream::list_all",
  "engine::workers::register",
  "w::f",
  "nope",
];

/** A `stream::*` input in the reference's snake case, fields sometimes missing or of the wrong type. */
const streamFunctionInput: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record(
      {
        stream_name: names,
        group_id: names,
        item_id: names,
        id: names,
        type: names,
        data: jsonValues,
        ops: fc.oneof(fc.array(fc.record({ type: fc.constantFrom("set", "merge", "increment", "decrement", "append", "remove", "x"), path: fc.oneof(fc.string({ maxLength: 6 }), fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 })), value: jsonValues, by: numbersOnTheWire }, { requiredKeys: ["type"] }), { maxLength: 3 }), jsonValues),
      },
      { requiredKeys: ["stream_name", "group_id"] },
    ),
  },
  { weight: 1, arbitrary: jsonValues },
);

/** One worker-protocol message: known and unknown types, every field possibly odd. */
export const workerMessage: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .record(
        {
          type: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...WORKER_TYPES) }, { weight: 1, arbitrary: names }),
          id: fc.oneof(fc.constantFrom("w::f", "t1", "stream::set"), names, jsonValues),
          function_id: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...FUNCTION_IDS) }, { weight: 1, arbitrary: jsonValues }),
          invocation_id: fc.oneof(fc.constantFrom("1", "2"), names, jsonValues),
          data: streamFunctionInput,
          result: jsonValues,
          error: jsonValues,
          trigger_type: fc.oneof(fc.constantFrom("stream", "stream:join", "stream:leave", "cron"), jsonValues),
          config: fc.oneof(fc.record({ stream_name: names, group_id: names, item_id: names, condition_function_id: names }, { requiredKeys: [] }), jsonValues),
          invocation: fc.constantFrom(undefined, { url: "http://127.0.0.1:1/" }),
        },
        { requiredKeys: ["type"] },
      )
      .map((message) => JSON.stringify(message)),
  },
  { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 60 }) },
);
